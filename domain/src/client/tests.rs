//! The aggregate's rules, one per test, given / when / then with cqrs-es's `TestFramework`.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;

use super::*;
use crate::values::{ClientId, ClientName, RedirectUri, SecretHash, SecretRecord};

type ClientTest = TestFramework<Client>;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

fn secret(id: &str, at: DateTime<Utc>) -> SecretRecord {
    SecretRecord {
        secret_id: id.to_owned(),
        hash: SecretHash::parse("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g").unwrap(),
        created_at: at,
        expires_at: None,
        valid_until: None,
    }
}

/// A valid public SPA: authorization code with PKCE.
fn spa() -> ClientSettingsInput {
    ClientSettingsInput {
        client_name: Some("Data Refinery Studio".into()),
        client_uri: Some("https://studio.example.com".into()),
        require_client_secret: false,
        enabled: true,
        offline_access: false,
        require_pkce: true,
        grant_types: vec!["authorization_code".into()],
        redirect_uris: vec!["https://studio.example.com/callback".into()],
        post_logout_redirect_uris: vec![],
        allowed_cors_origins: vec!["https://studio.example.com".into()],
        allowed_scopes: vec!["openid".into(), "profile".into()],
        about: None,
        token_endpoint_auth_method: None,
        keys: None,
    }
}

/// A valid confidential service client.
fn service() -> ClientSettingsInput {
    ClientSettingsInput {
        client_name: Some("Billing worker".into()),
        require_client_secret: true,
        enabled: true,
        grant_types: vec!["client_credentials".into()],
        allowed_scopes: vec!["octo_api".into()],
        ..ClientSettingsInput::default()
    }
}

fn register(settings: ClientSettingsInput) -> ClientCommand {
    let secret = settings.require_client_secret.then(|| secret("s1", t0()));
    ClientCommand::Register(RegisterClient {
        client_id: "studio".into(),
        settings,
        secret,
        expected_version: None,
    })
}

fn update(settings: ClientSettingsInput) -> ClientCommand {
    ClientCommand::Update(UpdateClient {
        settings,
        new_secret: None,
        expected_version: None,
        at: t0(),
    })
}

fn registered(settings: ClientSettingsInput) -> ClientEvent {
    let secret = settings.require_client_secret.then(|| secret("s1", t0()));
    ClientEvent::ClientRegistered {
        client_id: ClientId::parse("studio").unwrap(),
        settings: ClientSettings::validate(&settings).unwrap(),
        secret,
    }
}

/// The field names of the validation errors `command` produces on a fresh aggregate (or after
/// `given`).
fn refused_fields(given: Vec<ClientEvent>, command: ClientCommand) -> Vec<String> {
    match ClientTest::with(())
        .given(given)
        .when(command)
        .inspect_result()
    {
        Err(ClientError::Invalid(errors)) => {
            errors.errors().iter().map(|e| e.field.clone()).collect()
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
}

fn with_redirect(uri: &str) -> ClientSettingsInput {
    ClientSettingsInput {
        redirect_uris: vec![uri.into()],
        ..spa()
    }
}

#[test]
fn registering_a_valid_public_client_records_every_setting() {
    ClientTest::with(())
        .given_no_previous_events()
        .when(register(spa()))
        .then_expect_events(vec![registered(spa())]);
}

#[test]
fn registering_a_confidential_client_records_its_secret_hash() {
    ClientTest::with(())
        .given_no_previous_events()
        .when(register(service()))
        .then_expect_events(vec![registered(service())]);
}

#[test]
fn redirect_uri_with_fragment_is_refused() {
    let fields = refused_fields(
        vec![],
        register(with_redirect("https://a.example.com/cb#frag")),
    );
    assert_eq!(fields, ["redirect_uris[0]"]);
}

#[test]
fn javascript_redirect_uri_is_refused() {
    let fields = refused_fields(
        vec![],
        register(with_redirect("javascript:alert(document.cookie)")),
    );
    assert_eq!(fields, ["redirect_uris[0]"]);
}

#[test]
fn plain_http_redirect_on_a_public_host_is_refused() {
    let fields = refused_fields(vec![], register(with_redirect("http://app.example.com/cb")));
    assert_eq!(fields, ["redirect_uris[0]"]);
}

#[test]
fn plain_http_redirect_on_loopback_is_accepted() {
    let settings = with_redirect("http://127.0.0.1:7777/cb");
    ClientTest::with(())
        .given_no_previous_events()
        .when(register(settings.clone()))
        .then_expect_events(vec![registered(settings)]);
}

#[test]
fn cors_origin_with_trailing_slash_or_path_is_refused() {
    let settings = ClientSettingsInput {
        allowed_cors_origins: vec![
            "https://ok.example.com".into(),
            "https://a.example.com/".into(),
            "https://b.example.com/path".into(),
        ],
        ..spa()
    };
    let fields = refused_fields(vec![], register(settings));
    assert_eq!(
        fields,
        ["allowed_cors_origins[1]", "allowed_cors_origins[2]"]
    );
}

#[test]
fn malformed_scope_is_refused() {
    let settings = ClientSettingsInput {
        allowed_scopes: vec!["openid".into(), "octo api".into()],
        ..spa()
    };
    assert_eq!(
        refused_fields(vec![], register(settings)),
        ["allowed_scopes[1]"]
    );
}

#[test]
fn client_credentials_on_a_public_client_is_refused() {
    let settings = ClientSettingsInput {
        require_client_secret: false,
        ..service()
    };
    assert_eq!(refused_fields(vec![], register(settings)), ["grant_types"]);
}

#[test]
fn refresh_token_without_offline_access_is_refused() {
    let settings = ClientSettingsInput {
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        offline_access: false,
        ..spa()
    };
    assert_eq!(refused_fields(vec![], register(settings)), ["grant_types"]);
}

#[test]
fn refresh_token_with_offline_access_is_accepted() {
    let settings = ClientSettingsInput {
        grant_types: vec!["refresh_token".into(), "authorization_code".into()],
        offline_access: true,
        ..spa()
    };
    let events = ClientTest::with(())
        .given_no_previous_events()
        .when(register(settings))
        .inspect_result()
        .unwrap();
    let ClientEvent::ClientRegistered { settings, .. } = &events[0] else {
        panic!("{events:?}")
    };
    // Grant types are kept in canonical order, whatever order they were sent in.
    let names: Vec<_> = settings.grant_types.iter().map(|g| g.as_str()).collect();
    assert_eq!(names, ["authorization_code", "refresh_token"]);
}

#[test]
fn authorization_code_without_redirect_uri_is_refused() {
    let settings = ClientSettingsInput {
        redirect_uris: vec![],
        ..spa()
    };
    assert_eq!(
        refused_fields(vec![], register(settings)),
        ["redirect_uris"]
    );
}

#[test]
fn no_grant_type_and_unknown_grant_type_are_refused() {
    let none = ClientSettingsInput {
        grant_types: vec![],
        ..spa()
    };
    assert_eq!(refused_fields(vec![], register(none)), ["grant_types"]);
    let implicit = ClientSettingsInput {
        grant_types: vec!["implicit".into()],
        ..spa()
    };
    assert_eq!(
        refused_fields(vec![], register(implicit)),
        ["grant_types[0]"]
    );
}

#[test]
fn every_violation_is_reported_at_once() {
    let settings = ClientSettingsInput {
        client_name: Some("  ".into()),
        client_uri: Some("ftp://x".into()),
        require_client_secret: false,
        grant_types: vec!["client_credentials".into()],
        allowed_cors_origins: vec!["https://a.example.com/".into()],
        allowed_scopes: vec!["a b".into()],
        ..spa()
    };
    let command = ClientCommand::Register(RegisterClient {
        client_id: "bad id".into(),
        settings,
        secret: None,
        expected_version: None,
    });
    let fields = refused_fields(vec![], command);
    assert_eq!(
        fields,
        [
            "client_id",
            "client_name",
            "client_uri",
            "allowed_cors_origins[0]",
            "allowed_scopes[0]",
            "grant_types"
        ]
    );
}

#[test]
fn confidential_client_without_secret_is_refused() {
    let command = ClientCommand::Register(RegisterClient {
        client_id: "svc".into(),
        settings: service(),
        secret: None,
        expected_version: None,
    });
    assert_eq!(refused_fields(vec![], command), ["client_secret"]);
}

#[test]
fn public_client_with_secret_is_refused() {
    let command = ClientCommand::Register(RegisterClient {
        client_id: "spa".into(),
        settings: spa(),
        secret: Some(secret("s1", t0())),
        expected_version: None,
    });
    assert_eq!(refused_fields(vec![], command), ["client_secret"]);
}

#[test]
fn registering_a_live_id_is_a_conflict() {
    ClientTest::with(())
        .given(vec![registered(spa())])
        .when(register(spa()))
        .then_expect_error(ClientError::AlreadyExists);
}

#[test]
fn a_deleted_client_can_be_registered_again() {
    ClientTest::with(())
        .given(vec![registered(spa()), ClientEvent::ClientDeleted {}])
        .when(register(service()))
        .then_expect_events(vec![registered(service())]);
}

#[test]
fn update_records_only_the_changed_fields() {
    let renamed = ClientSettingsInput {
        client_name: Some("Studio".into()),
        enabled: false,
        ..spa()
    };
    ClientTest::with(())
        .given(vec![registered(spa())])
        .when(update(renamed))
        .then_expect_events(vec![ClientEvent::ClientUpdated {
            changes: ClientChanges {
                client_name: Some(ClientName::parse("Studio").unwrap()),
                enabled: Some(false),
                ..ClientChanges::default()
            },
            secret: None,
            revoked_secrets: vec![],
        }]);
}

#[test]
fn update_that_removes_the_client_uri_records_null() {
    let without_uri = ClientSettingsInput {
        client_uri: None,
        ..spa()
    };
    let events = ClientTest::with(())
        .given(vec![registered(spa())])
        .when(update(without_uri))
        .inspect_result()
        .unwrap();
    let json = serde_json::to_value(&events[0]).unwrap();
    assert_eq!(
        json["ClientUpdated"]["changes"],
        serde_json::json!({"client_uri": null})
    );
    let back: ClientEvent = serde_json::from_value(json).unwrap();
    assert_eq!(back, events[0]);
}

#[test]
fn a_no_op_update_produces_no_event() {
    ClientTest::with(())
        .given(vec![registered(spa())])
        .when(update(spa()))
        .then_expect_events(vec![]);
}

#[test]
fn an_update_with_invalid_settings_is_refused() {
    let fields = refused_fields(
        vec![registered(spa())],
        update(with_redirect("https://a.example.com/cb#x")),
    );
    assert_eq!(fields, ["redirect_uris[0]"]);
}

#[test]
fn making_a_public_client_confidential_needs_a_secret() {
    let confidential = ClientSettingsInput {
        require_client_secret: true,
        ..spa()
    };
    let given = vec![registered(spa())];
    assert_eq!(
        refused_fields(given.clone(), update(confidential.clone())),
        ["client_secret"]
    );
    let with_secret = ClientCommand::Update(UpdateClient {
        settings: confidential,
        new_secret: Some(secret("s9", t0())),
        expected_version: None,
        at: t0(),
    });
    ClientTest::with(())
        .given(given)
        .when(with_secret)
        .then_expect_events(vec![ClientEvent::ClientUpdated {
            changes: ClientChanges {
                require_client_secret: Some(true),
                ..ClientChanges::default()
            },
            secret: Some(secret("s9", t0())),
            revoked_secrets: vec![],
        }]);
}

/// A confidential web app (authorization code, secret `s1`).
fn web_app() -> ClientSettingsInput {
    ClientSettingsInput {
        require_client_secret: true,
        ..spa()
    }
}

fn made_public() -> ClientEvent {
    ClientEvent::ClientUpdated {
        changes: ClientChanges {
            require_client_secret: Some(false),
            ..ClientChanges::default()
        },
        secret: None,
        revoked_secrets: vec!["s1".into()],
    }
}

#[test]
fn making_a_confidential_client_public_revokes_every_secret() {
    ClientTest::with(())
        .given(vec![registered(web_app())])
        .when(update(spa()))
        .then_expect_events(vec![made_public()]);
    let mut client = Client::default();
    client.apply(registered(web_app()));
    client.apply(made_public());
    assert!(client.live().unwrap().secrets.is_empty());
}

#[test]
fn a_client_made_confidential_again_gets_a_new_secret_never_an_old_one() {
    let given = vec![registered(web_app()), made_public()];
    let mut client = Client::default();
    given.iter().cloned().for_each(|e| client.apply(e));
    assert!(client.update_needs_secret(&web_app(), t0()));
    assert_eq!(
        refused_fields(given.clone(), update(web_app())),
        ["client_secret"]
    );
}

#[test]
fn a_secret_a_version_1_0_update_left_on_a_public_client_is_revoked_when_it_turns_confidential() {
    // Before event version 1.1, making a client public kept its secrets.
    let legacy_public = ClientEvent::ClientUpdated {
        changes: ClientChanges {
            require_client_secret: Some(false),
            ..ClientChanges::default()
        },
        secret: None,
        revoked_secrets: vec![],
    };
    let given = vec![registered(web_app()), legacy_public];
    let mut client = Client::default();
    given.iter().cloned().for_each(|e| client.apply(e));
    assert_eq!(
        client.live().unwrap().secrets.len(),
        1,
        "left behind by 1.0"
    );
    assert!(
        client.update_needs_secret(&web_app(), t0()),
        "the lingering secret does not count"
    );
    ClientTest::with(())
        .given(given)
        .when(ClientCommand::Update(UpdateClient {
            settings: web_app(),
            new_secret: Some(secret("s9", t0())),
            expected_version: None,
            at: t0(),
        }))
        .then_expect_events(vec![ClientEvent::ClientUpdated {
            changes: ClientChanges {
                require_client_secret: Some(true),
                ..ClientChanges::default()
            },
            secret: Some(secret("s9", t0())),
            revoked_secrets: vec!["s1".into()],
        }]);
}

#[test]
fn client_updated_is_event_version_1_3_and_older_payloads_still_read() {
    use cqrs_es::DomainEvent;
    assert_eq!(made_public().event_version(), "1.3");
    assert_eq!(ClientEvent::ClientDeleted {}.event_version(), "1.0");
    let stored_1_0 = serde_json::json!({"ClientUpdated": {"changes": {"enabled": false}}});
    let event = cqrs_es::persist::SerializedEvent {
        aggregate_id: "studio".into(),
        sequence: 2,
        aggregate_type: "Client".into(),
        event_type: "ClientUpdated".into(),
        event_version: "1.0".into(),
        payload: stored_1_0,
        metadata: serde_json::Value::Null,
    };
    let upcasters = crate::upcasters();
    // As every reader applies them: in order, each to what the one before made.
    let upcast = upcasters.iter().fold(event, |event, upcaster| {
        if upcaster.can_upcast(&event.event_type, &event.event_version) {
            upcaster.upcast(event)
        } else {
            event
        }
    });
    assert_eq!(upcast.event_version, "1.3", "1.0 → 1.1 → 1.2 → 1.3");
    let read: ClientEvent = serde_json::from_value(upcast.payload).unwrap();
    assert!(matches!(
        read,
        ClientEvent::ClientUpdated { revoked_secrets, changes, .. }
            if revoked_secrets.is_empty() && changes.about.is_none() && changes.keys.is_none()
    ));
    assert!(!upcasters
        .iter()
        .any(|u| u.can_upcast("ClientUpdated", "1.3")));
}

#[test]
fn client_registered_1_0_reads_as_an_undescribed_web_client() {
    let registered = Client::default()
        .decide(ClientCommand::Register(RegisterClient {
            client_id: "studio".into(),
            settings: spa(),
            secret: None,
            expected_version: None,
        }))
        .unwrap()
        .unwrap();
    assert_eq!(cqrs_es::DomainEvent::event_version(&registered), "1.2");
    // Nothing described: the stored payload has the 1.0 shape, which reads back the same.
    let payload = serde_json::to_value(&registered).unwrap();
    for field in [
        "application_type",
        "logo_uri",
        "contacts",
        "software_id",
        "jwks",
        "jwks_uri",
    ] {
        assert!(
            payload["ClientRegistered"]["settings"].get(field).is_none(),
            "{field} left out when unset"
        );
    }
    let read: ClientEvent = serde_json::from_value(payload).unwrap();
    let ClientEvent::ClientRegistered { settings, .. } = read else {
        panic!("{read:?}");
    };
    assert_eq!(settings.about, crate::client::ClientAbout::default());
    assert!(crate::upcasters()
        .iter()
        .any(|u| u.can_upcast("ClientRegistered", "1.0")));
}

#[test]
fn an_update_without_a_description_keeps_the_clients_and_one_with_it_replaces_it() {
    let described = ClientSettingsInput {
        about: Some(crate::client::ClientAboutInput {
            application_type: Some("native".into()),
            contacts: vec!["team@example.com".into()],
            software_id: Some("cli".into()),
            ..Default::default()
        }),
        ..spa()
    };
    let mut client = Client::default();
    let registered = client
        .decide(ClientCommand::Register(RegisterClient {
            client_id: "studio".into(),
            settings: described,
            secret: None,
            expected_version: None,
        }))
        .unwrap()
        .unwrap();
    cqrs_es::Aggregate::apply(&mut client, registered);
    let update = |settings: ClientSettingsInput| {
        client.decide(ClientCommand::Update(UpdateClient {
            settings,
            new_secret: None,
            expected_version: None,
            at: t0(),
        }))
    };
    let renamed = ClientSettingsInput {
        client_name: Some("Renamed".into()),
        ..spa()
    };
    let Some(ClientEvent::ClientUpdated { changes, .. }) = update(renamed).unwrap() else {
        panic!("an update");
    };
    assert!(changes.client_name.is_some());
    assert_eq!(changes.about, None, "no description given: kept");
    let cleared = ClientSettingsInput {
        about: Some(crate::client::ClientAboutInput::default()),
        ..spa()
    };
    let Some(ClientEvent::ClientUpdated { changes, .. }) = update(cleared).unwrap() else {
        panic!("an update");
    };
    assert_eq!(changes.about, Some(crate::client::ClientAbout::default()));
    let invalid = ClientSettingsInput {
        about: Some(crate::client::ClientAboutInput {
            application_type: Some("desktop".into()),
            contacts: vec!["not-an-address".into()],
            logo_uri: Some("ftp://example.com/logo.png".into()),
            ..Default::default()
        }),
        ..spa()
    };
    let Err(ClientError::Invalid(errors)) = update(invalid) else {
        panic!("refused");
    };
    let fields: Vec<&str> = errors.errors().iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["application_type", "logo_uri", "contacts[0]"]);
}

#[test]
fn update_rotate_and_delete_of_an_unknown_client_are_not_found() {
    for command in [
        update(spa()),
        ClientCommand::RotateSecret(RotateSecret {
            secret: secret("s2", t0()),
            previous_secrets_valid_until: None,
            expected_version: None,
        }),
        ClientCommand::Delete(DeleteClient {
            expected_version: None,
        }),
    ] {
        ClientTest::with(())
            .given_no_previous_events()
            .when(command)
            .then_expect_error(ClientError::NotFound);
    }
}

#[test]
fn update_rotate_and_delete_of_a_deleted_client_are_not_found() {
    let deleted = vec![registered(service()), ClientEvent::ClientDeleted {}];
    for command in [
        update(service()),
        ClientCommand::RotateSecret(RotateSecret {
            secret: secret("s2", t0()),
            previous_secrets_valid_until: None,
            expected_version: None,
        }),
        ClientCommand::Delete(DeleteClient {
            expected_version: None,
        }),
    ] {
        ClientTest::with(())
            .given(deleted.clone())
            .when(command)
            .then_expect_error(ClientError::NotFound);
    }
}

#[test]
fn a_stale_expected_version_is_refused() {
    let given = vec![
        registered(spa()),
        ClientEvent::ClientUpdated {
            changes: ClientChanges {
                enabled: Some(false),
                ..ClientChanges::default()
            },
            secret: None,
            revoked_secrets: vec![],
        },
    ];
    ClientTest::with(())
        .given(given.clone())
        .when(ClientCommand::Delete(DeleteClient {
            expected_version: Some(1),
        }))
        .then_expect_error(ClientError::VersionMismatch {
            expected: 1,
            actual: 2,
        });
    ClientTest::with(())
        .given(given)
        .when(ClientCommand::Delete(DeleteClient {
            expected_version: Some(2),
        }))
        .then_expect_events(vec![ClientEvent::ClientDeleted {}]);
}

#[test]
fn rotation_without_grace_replaces_the_previous_secret() {
    let at = t0() + Duration::hours(1);
    let mut client = Client::default();
    client.apply(registered(service()));
    client.apply(ClientEvent::ClientSecretRotated {
        secret: secret("s2", at),
        previous_secrets_expire_at: at,
        ended_secrets: Vec::new(),
    });
    let ids: Vec<_> = client
        .live()
        .unwrap()
        .secrets
        .iter()
        .map(|s| s.secret_id.as_str())
        .collect();
    assert_eq!(ids, ["s2"]);
}

#[test]
fn rotation_with_grace_keeps_the_previous_secret_until_then() {
    let at = t0() + Duration::hours(1);
    let until = at + Duration::days(1);
    ClientTest::with(())
        .given(vec![registered(service())])
        .when(ClientCommand::RotateSecret(RotateSecret {
            secret: secret("s2", at),
            previous_secrets_valid_until: Some(until),
            expected_version: Some(1),
        }))
        .then_expect_events(vec![ClientEvent::ClientSecretRotated {
            secret: secret("s2", at),
            previous_secrets_expire_at: until,
            ended_secrets: Vec::new(),
        }]);
    let mut client = Client::default();
    client.apply(registered(service()));
    client.apply(ClientEvent::ClientSecretRotated {
        secret: secret("s2", at),
        previous_secrets_expire_at: until,
        ended_secrets: Vec::new(),
    });
    let secrets = &client.live().unwrap().secrets;
    assert_eq!(secrets.len(), 2);
    assert_eq!(secrets[0].expires_at, Some(until));
    assert!(!secrets[0].is_active_at(until));
}

#[test]
fn rotating_the_secret_of_a_public_client_is_refused() {
    let command = ClientCommand::RotateSecret(RotateSecret {
        secret: secret("s2", t0()),
        previous_secrets_valid_until: None,
        expected_version: None,
    });
    assert_eq!(
        refused_fields(vec![registered(spa())], command),
        ["require_client_secret"]
    );
}

#[test]
fn duplicate_list_entries_are_kept_once() {
    let settings = ClientSettingsInput {
        redirect_uris: vec![
            "https://a.example.com/cb".into(),
            "https://a.example.com/cb".into(),
        ],
        ..spa()
    };
    let validated = ClientSettings::validate(&settings).unwrap();
    assert_eq!(
        validated.redirect_uris,
        [RedirectUri::parse("https://a.example.com/cb").unwrap()]
    );
}

#[test]
fn version_counts_applied_events() {
    let mut client = Client::default();
    assert_eq!(client.version(), 0);
    client.apply(registered(spa()));
    client.apply(ClientEvent::ClientDeleted {});
    client.apply(registered(spa()));
    assert_eq!(client.version(), 3);
    assert!(client.live().is_some());
}

#[test]
fn a_rotation_during_a_grace_ends_the_older_grace_so_two_secrets_at_most_are_valid() {
    let at = t0() + Duration::hours(1);
    let later = at + Duration::minutes(10);
    let until = at + Duration::days(1);
    let first_rotation = ClientEvent::ClientSecretRotated {
        secret: secret("s2", at),
        previous_secrets_expire_at: until,
        ended_secrets: Vec::new(),
    };
    ClientTest::with(())
        .given(vec![registered(service()), first_rotation.clone()])
        .when(ClientCommand::RotateSecret(RotateSecret {
            secret: secret("s3", later),
            previous_secrets_valid_until: Some(later + Duration::days(1)),
            expected_version: Some(2),
        }))
        .then_expect_events(vec![ClientEvent::ClientSecretRotated {
            secret: secret("s3", later),
            previous_secrets_expire_at: later + Duration::days(1),
            ended_secrets: vec!["s1".to_owned()],
        }]);
    let mut client = Client::default();
    client.apply(registered(service()));
    client.apply(first_rotation);
    client.apply(ClientEvent::ClientSecretRotated {
        secret: secret("s3", later),
        previous_secrets_expire_at: later + Duration::days(1),
        ended_secrets: vec!["s1".to_owned()],
    });
    let active: Vec<_> = client
        .live()
        .unwrap()
        .secrets
        .iter()
        .filter(|s| s.is_active_at(later))
        .map(|s| s.secret_id.as_str())
        .collect();
    assert_eq!(active, ["s2", "s3"]);
}

#[test]
fn a_rotation_of_version_1_0_reads_as_ending_no_secret() {
    use cqrs_es::persist::SerializedEvent;
    let stored = SerializedEvent {
        aggregate_id: "svc".into(),
        sequence: 2,
        aggregate_type: "Client".into(),
        event_type: "ClientSecretRotated".into(),
        event_version: "1.0".into(),
        payload: serde_json::json!({"ClientSecretRotated": {
            "secret": {"secret_id": "s2", "hash": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
                       "created_at": "2026-01-01T00:00:00Z", "expires_at": null},
            "previous_secrets_expire_at": "2026-01-02T00:00:00Z"}}),
        metadata: serde_json::json!({}),
    };
    let upcast = crate::upcasters()
        .into_iter()
        .fold(stored, |event, upcaster| {
            if upcaster.can_upcast(&event.event_type, &event.event_version) {
                upcaster.upcast(event)
            } else {
                event
            }
        });
    assert_eq!(upcast.event_version, "1.2", "1.0 → 1.1 → 1.2");
    let event: ClientEvent = serde_json::from_value(upcast.payload).unwrap();
    assert!(matches!(
        event,
        ClientEvent::ClientSecretRotated { ended_secrets, .. } if ended_secrets.is_empty()
    ));
}

#[test]
fn a_native_apps_loopback_redirect_uses_http_whether_or_not_the_update_restates_it() {
    let native = |redirect: &str| ClientSettingsInput {
        redirect_uris: vec![redirect.into()],
        about: Some(crate::client::ClientAboutInput {
            application_type: Some("native".into()),
            ..Default::default()
        }),
        ..spa()
    };
    let register = |settings: ClientSettingsInput| {
        Client::default().decide(ClientCommand::Register(RegisterClient {
            client_id: "cli".into(),
            settings,
            secret: None,
            expected_version: None,
        }))
    };
    let Err(ClientError::Invalid(errors)) = register(native("https://127.0.0.1:8400/cb")) else {
        panic!("refused");
    };
    assert_eq!(errors.errors()[0].field, "redirect_uris[0]");
    assert!(register(native("http://127.0.0.1:8400/cb")).is_ok());
    assert!(register(native("http://[::1]:8400/cb")).is_ok());
    let Err(ClientError::Invalid(errors)) = register(native("http://127.0.0.2:8400/cb")) else {
        panic!("a loopback address identity services do not take as one");
    };
    assert_eq!(errors.errors()[0].field, "redirect_uris[0]");
    let logout = ClientSettingsInput {
        post_logout_redirect_uris: vec!["https://localhost/bye".into()],
        ..native("http://127.0.0.1:8400/cb")
    };
    let Err(ClientError::Invalid(errors)) = register(logout) else {
        panic!("after logout too");
    };
    assert_eq!(errors.errors()[0].field, "post_logout_redirect_uris[0]");
    let web = ClientSettingsInput {
        redirect_uris: vec!["https://127.0.0.1:8400/cb".into()],
        ..spa()
    };
    assert!(register(web).is_ok(), "a web app's choice");

    let mut client = Client::default();
    let registered = register(native("http://127.0.0.1:8400/cb"))
        .unwrap()
        .unwrap();
    cqrs_es::Aggregate::apply(&mut client, registered);
    let kept_native = ClientSettingsInput {
        redirect_uris: vec!["https://localhost/cb".into()],
        about: None,
        ..spa()
    };
    let refused = client.decide(ClientCommand::Update(UpdateClient {
        settings: kept_native,
        new_secret: None,
        expected_version: None,
        at: t0(),
    }));
    assert!(
        matches!(refused, Err(ClientError::Invalid(_))),
        "the kept description is still native: {refused:?}"
    );
}

/// A confidential client that signs its token requests with a key (RFC 7523).
fn key_client() -> ClientSettingsInput {
    let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    ClientSettingsInput {
        token_endpoint_auth_method: Some(Some("private_key_jwt".into())),
        keys: Some(crate::client::ClientKeysInput {
            jwks: Some(
                serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k1"}]}),
            ),
            jwks_uri: None,
        }),
        ..service()
    }
}

#[test]
fn a_private_key_jwt_client_has_keys_and_no_secret() {
    let event = Client::default()
        .decide(ClientCommand::Register(RegisterClient {
            client_id: "worker".into(),
            settings: key_client(),
            secret: None,
            expected_version: None,
        }))
        .unwrap()
        .unwrap();
    let ClientEvent::ClientRegistered {
        settings,
        secret: issued,
        ..
    } = &event
    else {
        panic!("{event:?}");
    };
    assert!(issued.is_none());
    assert!(!settings.uses_secret());
    assert_eq!(settings.keys.jwks.as_ref().unwrap().kids(), ["k1"]);
    // A secret offered to it, or no keys, or a public client: each named.
    let with_secret = Client::default().decide(ClientCommand::Register(RegisterClient {
        client_id: "worker".into(),
        settings: key_client(),
        secret: Some(secret("s1", t0())),
        expected_version: None,
    }));
    assert!(
        matches!(with_secret, Err(ClientError::Invalid(e)) if e.errors()[0].field == "client_secret")
    );
    let keyless = ClientSettingsInput {
        keys: None,
        ..key_client()
    };
    assert_eq!(invalid_fields(&keyless), ["jwks"]);
    let public = ClientSettingsInput {
        require_client_secret: false,
        grant_types: vec!["urn:ietf:params:oauth:grant-type:device_code".into()],
        ..key_client()
    };
    assert_eq!(invalid_fields(&public), ["token_endpoint_auth_method"]);
    let both = ClientSettingsInput {
        keys: Some(crate::client::ClientKeysInput {
            jwks_uri: Some("https://worker.example.com/jwks".into()),
            ..key_client().keys.unwrap()
        }),
        ..key_client()
    };
    assert_eq!(invalid_fields(&both), ["jwks_uri"]);
}

fn invalid_fields(input: &ClientSettingsInput) -> Vec<String> {
    match ClientSettings::validate(input) {
        Ok(_) => Vec::new(),
        Err(e) => e.errors().iter().map(|e| e.field.clone()).collect(),
    }
}

#[test]
fn moving_to_keys_revokes_every_secret_and_moving_back_issues_a_new_one() {
    let mut client = Client::default();
    client.apply(registered(service()));
    assert!(!client.update_needs_secret(&key_client(), t0()));
    let to_keys = client
        .decide(ClientCommand::Update(UpdateClient {
            settings: key_client(),
            new_secret: None,
            expected_version: None,
            at: t0(),
        }))
        .unwrap()
        .unwrap();
    assert!(
        matches!(&to_keys, ClientEvent::ClientUpdated { revoked_secrets, changes, .. }
        if revoked_secrets == &["s1".to_owned()] && changes.keys.is_some())
    );
    client.apply(to_keys);
    assert!(client.live().unwrap().secrets.is_empty());
    let rotate = client.decide(ClientCommand::RotateSecret(RotateSecret {
        secret: secret("s2", t0()),
        previous_secrets_valid_until: None,
        expected_version: None,
    }));
    assert!(
        matches!(rotate, Err(ClientError::Invalid(e)) if e.errors()[0].field == "token_endpoint_auth_method")
    );
    // An update that leaves the method and keys out keeps them: no secret needed.
    let restated = ClientSettingsInput {
        token_endpoint_auth_method: None,
        keys: None,
        ..service()
    };
    assert!(!client.update_needs_secret(&restated, t0()));
    assert_eq!(
        client.decide(ClientCommand::Update(UpdateClient {
            settings: restated,
            new_secret: None,
            expected_version: None,
            at: t0(),
        })),
        Ok(None)
    );
    let back = ClientSettingsInput {
        token_endpoint_auth_method: Some(None),
        ..service()
    };
    assert!(client.update_needs_secret(&back, t0()));
}

#[test]
fn a_secret_ends_at_its_lifetime_or_its_grace_whichever_comes_first() {
    let mut record = secret("s1", t0());
    record.valid_until = Some(t0() + Duration::days(30));
    assert!(record.is_active_at(t0() + Duration::days(29)));
    assert!(!record.is_active_at(t0() + Duration::days(30)));
    record.expires_at = Some(t0() + Duration::days(1));
    assert_eq!(
        record.ends_at(),
        Some(t0() + Duration::days(1)),
        "the grace first"
    );
    record.expires_at = Some(t0() + Duration::days(40));
    assert_eq!(
        record.ends_at(),
        Some(t0() + Duration::days(30)),
        "the lifetime first"
    );
    // Stored without an end, a secret reads back without one.
    let stored = serde_json::to_value(secret("s2", t0())).unwrap();
    assert!(stored.get("valid_until").is_none());
}
