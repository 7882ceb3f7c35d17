//! Property tests of the parsers: no input makes them panic, and what they accept survives a
//! trip through serde (so stored events read back as the values that were written).

use proptest::prelude::*;

use super::*;
use crate::client::{ClientSettings, ClientSettingsInput};

/// Strings that look like URLs often enough to reach the deeper branches.
fn url_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "(https?|javascript|data|file|com\\.example\\.app|ftp|[a-z]{1,6}):(//)?[a-zA-Z0-9.*@:\\[\\]_~%-]{0,30}(:[0-9]{1,6})?(/[a-zA-Z0-9/?=&#%._-]{0,30})?",
        "https?://(localhost|127\\.0\\.0\\.1|\\[::1\\]|[a-z]{1,10}\\.example\\.com)(:[0-9]{1,5})?/?",
    ]
}

fn round_trips<T>(value: &T) -> bool
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq,
{
    serde_json::to_string(value)
        .ok()
        .and_then(|json| serde_json::from_str::<T>(&json).ok())
        .is_some_and(|back| &back == value)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn client_id_parser_never_panics_and_accepted_ids_round_trip(s in any::<String>()) {
        if let Ok(id) = ClientId::parse(&s) {
            prop_assert!(round_trips(&id));
            prop_assert_eq!(id.as_ref(), s.as_str());
        }
    }

    #[test]
    fn client_name_parser_never_panics_and_accepted_names_round_trip(s in any::<String>()) {
        if let Ok(name) = ClientName::parse(&s) {
            prop_assert!(round_trips(&name));
            prop_assert!(name.as_ref().chars().count() <= ClientName::MAX_LEN);
        }
    }

    #[test]
    fn uri_parsers_never_panic_and_accepted_uris_round_trip(s in url_like()) {
        if let Ok(uri) = RedirectUri::parse(&s) {
            prop_assert!(round_trips(&uri));
            prop_assert!(!uri.as_ref().contains('#'));
        }
        if let Ok(uri) = ClientUri::parse(&s) {
            prop_assert!(round_trips(&uri));
        }
        if let Ok(origin) = CorsOrigin::parse(&s) {
            prop_assert!(round_trips(&origin));
            prop_assert!(!origin.as_ref().ends_with('/'));
        }
    }

    #[test]
    fn scope_and_grant_type_parsers_never_panic(s in any::<String>()) {
        if let Ok(scope) = Scope::parse(&s) {
            prop_assert!(round_trips(&scope));
        }
        let _ = GrantType::parse(&s);
        let _ = SecretHash::parse(&s);
    }

    #[test]
    fn settings_validation_never_panics(
        name in proptest::option::of(any::<String>()),
        uri in proptest::option::of(url_like()),
        flags in any::<(bool, bool, bool, bool)>(),
        grants in proptest::collection::vec(
            prop_oneof![Just("authorization_code".to_owned()), Just("client_credentials".to_owned()),
                        Just("refresh_token".to_owned()), any::<String>()], 0..5),
        uris in proptest::collection::vec(url_like(), 0..4),
        origins in proptest::collection::vec(url_like(), 0..4),
        scopes in proptest::collection::vec(any::<String>(), 0..4),
    ) {
        let input = ClientSettingsInput {
            client_name: name,
            client_uri: uri,
            require_client_secret: flags.0,
            enabled: flags.1,
            offline_access: flags.2,
            require_pkce: flags.3,
            grant_types: grants,
            redirect_uris: uris.clone(),
            post_logout_redirect_uris: uris,
            allowed_cors_origins: origins,
            allowed_scopes: scopes,
            about: None,
            token_endpoint_auth_method: None,
            keys: None,
        };
        if let Ok(settings) = ClientSettings::validate(&input) {
            prop_assert!(round_trips(&settings));
        }
    }
}
