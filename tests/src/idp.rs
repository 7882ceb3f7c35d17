//! A small OpenID Connect provider for the sign-in tests: discovery, an authorization endpoint
//! that signs the configured person in at once, a token endpoint that checks the code, the
//! redirect URI and the PKCE verifier (S256), and a JWKS. ID tokens are ES256, signed with the
//! test-only key `fixtures/jwt/key1.pem`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde::Deserialize;
use serde_json::{json, Value};

/// Who the provider signs in, and how it misbehaves when asked to.
#[derive(Debug, Clone)]
pub struct IdpUser {
    /// `sub`.
    pub sub: String,
    /// `name`.
    pub name: String,
    /// The scopes it grants.
    pub scope: String,
    /// Leave `scope` out of the token answer (RFC 6749 allows it).
    pub omit_scope: bool,
    /// Issue the access token as a JWT carrying the granted `scope` (else it is opaque).
    pub scope_in_access_token: bool,
    /// A `groups` claim in the ID token.
    pub groups: Option<Vec<String>>,
    /// A second audience in the ID token (and no `azp`).
    pub extra_audience: Option<String>,
    /// Put another nonce into the ID token than the one asked for.
    pub wrong_nonce: bool,
}

impl IdpUser {
    /// A person with these scopes, and nothing unusual.
    pub fn new(sub: &str, name: &str, scope: &str) -> Self {
        Self {
            sub: sub.to_owned(),
            name: name.to_owned(),
            scope: scope.to_owned(),
            omit_scope: false,
            scope_in_access_token: false,
            groups: None,
            extra_audience: None,
            wrong_nonce: false,
        }
    }
}

#[derive(Debug, Clone)]
struct Pending {
    client_id: String,
    redirect_uri: String,
    nonce: String,
    challenge: String,
}

#[derive(Default)]
struct Inner {
    codes: HashMap<String, Pending>,
    /// Every token request: whether its PKCE verifier matched.
    pkce_checks: Vec<bool>,
}

/// A running provider.
#[derive(Clone)]
pub struct Idp {
    /// Its issuer URL.
    pub issuer: String,
    user: Arc<Mutex<IdpUser>>,
    inner: Arc<Mutex<Inner>>,
}

#[derive(Clone)]
struct Shared {
    issuer: String,
    user: Arc<Mutex<IdpUser>>,
    inner: Arc<Mutex<Inner>>,
}

fn key() -> EncodingKey {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/jwt/key1.pem");
    EncodingKey::from_ec_pem(&std::fs::read(path).unwrap()).unwrap()
}

#[derive(Debug, Deserialize)]
struct AuthorizeQuery {
    response_type: String,
    client_id: String,
    redirect_uri: String,
    state: String,
    nonce: String,
    code_challenge: String,
    code_challenge_method: String,
}

async fn authorize(State(shared): State<Shared>, Query(query): Query<AuthorizeQuery>) -> Response {
    if query.response_type != "code" || query.code_challenge_method != "S256" {
        return (StatusCode::BAD_REQUEST, "code flow with S256 PKCE only").into_response();
    }
    let code = uuid::Uuid::new_v4().simple().to_string();
    shared.inner.lock().unwrap().codes.insert(
        code.clone(),
        Pending {
            client_id: query.client_id,
            redirect_uri: query.redirect_uri.clone(),
            nonce: query.nonce,
            challenge: query.code_challenge,
        },
    );
    let separator = if query.redirect_uri.contains('?') {
        '&'
    } else {
        '?'
    };
    Redirect::to(&format!(
        "{}{separator}code={code}&state={}",
        query.redirect_uri,
        form_urlencoded::byte_serialize(query.state.as_bytes()).collect::<String>()
    ))
    .into_response()
}

async fn token(State(shared): State<Shared>, body: Bytes) -> Response {
    let fields: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| fields.get(name).cloned().unwrap_or_default();
    let pending = shared.inner.lock().unwrap().codes.remove(&field("code"));
    let Some(pending) = pending else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    };
    let challenge = URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(
        field("code_verifier").as_bytes(),
    ));
    let pkce = challenge == pending.challenge;
    shared.inner.lock().unwrap().pkce_checks.push(pkce);
    if field("grant_type") != "authorization_code"
        || field("redirect_uri") != pending.redirect_uri
        || field("client_id") != pending.client_id
        || !pkce
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    }
    let user = shared.user.lock().unwrap().clone();
    let now = chrono::Utc::now().timestamp();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("key1".to_owned());
    let nonce = if user.wrong_nonce {
        "not-the-nonce".to_owned()
    } else {
        pending.nonce
    };
    let mut claims = json!({
        "iss": shared.issuer, "aud": pending.client_id, "sub": user.sub, "name": user.name,
        "nonce": nonce, "iat": now, "exp": now + 300,
    });
    if let Some(groups) = &user.groups {
        claims["groups"] = json!(groups);
    }
    if let Some(other) = &user.extra_audience {
        claims["aud"] = json!([pending.client_id, other]);
    }
    let id_token = encode(&header, &claims, &key()).unwrap();
    let access_token = if user.scope_in_access_token {
        let claims = json!({
            "iss": shared.issuer, "aud": "https://api.example.com", "sub": user.sub,
            "scope": user.scope, "iat": now, "exp": now + 300,
        });
        encode(&header, &claims, &key()).unwrap()
    } else {
        "opaque-access-token".to_owned()
    };
    let mut answer = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
        "scope": user.scope,
    });
    if user.omit_scope {
        answer.as_object_mut().unwrap().remove("scope");
    }
    Json(answer).into_response()
}

async fn discovery(State(shared): State<Shared>) -> Json<Value> {
    Json(json!({
        "issuer": shared.issuer,
        "authorization_endpoint": format!("{}/authorize", shared.issuer),
        "token_endpoint": format!("{}/token", shared.issuer),
        "jwks_uri": format!("{}/jwks", shared.issuer),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["ES256"],
    }))
}

async fn jwks() -> Json<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/jwt/jwks-key1.json");
    Json(serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap())
}

impl Idp {
    /// Starts the provider on a free port of 127.0.0.1, signing `user` in.
    pub async fn start(user: IdpUser) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let shared = Shared {
            issuer: issuer.clone(),
            user: Arc::new(Mutex::new(user)),
            inner: Arc::new(Mutex::new(Inner::default())),
        };
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/jwks", get(jwks))
            .with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            issuer,
            user: shared.user,
            inner: shared.inner,
        }
    }

    /// Changes who is signed in (and how).
    pub fn set_user(&self, user: IdpUser) {
        *self.user.lock().unwrap() = user;
    }

    /// Whether every token request so far carried the right PKCE verifier (and there was one).
    pub fn pkce_always_checked(&self) -> bool {
        let checks = &self.inner.lock().unwrap().pkce_checks;
        !checks.is_empty() && checks.iter().all(|ok| *ok)
    }
}
