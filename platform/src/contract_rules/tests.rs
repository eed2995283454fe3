use director_proto::{companies, dispatch, integrations};

use prost_reflect::DescriptorPool;

use super::*;

fn fields(status: &tonic::Status) -> Vec<String> {
    let details = tonic_types::StatusExt::get_error_details(status);
    details
        .bad_request()
        .map(|bad| {
            bad.field_violations
                .iter()
                .map(|v| v.field.clone())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_rule_in_the_contracts_is_supported() {
    let book = RuleBook::director();
    let name = book
        .pool
        .get_message_by_name("director.companies.v1.CreateCompanyRequest")
        .and_then(|message| message.get_field_by_name("name"))
        .expect("CreateCompanyRequest.name");
    let rules = book.rules_of(&name).expect("name carries rules");
    assert!(rules.required);
    let ValueRules::Text(text) = &rules.value else {
        panic!("string rules expected: {rules:?}");
    };
    assert_eq!(text.max_len, Some(255));
    assert_eq!(
        text.pattern.as_ref().map(regex::Regex::as_str),
        Some(NOT_BLANK_PATTERN)
    );
}

#[test]
fn a_valid_request_passes() {
    let request = companies::CreateCompanyRequest {
        name: " Acme ".into(),
        email: Some("a@b.example".into()),
        phone: Some("+1 (555) 012-3456".into()),
        address: Some(String::new()),
        external_id: None,
    };
    assert!(check(&request).is_ok());
}

#[test]
fn each_bad_field_is_named_once() {
    let request = companies::CreateCompanyRequest {
        name: "   ".into(),
        email: Some("not-an-email".into()),
        phone: Some("555 0123".into()),
        address: Some("a\0b".into()),
        external_id: Some("x".repeat(256)),
    };
    let status = check(&request).expect_err("every field is bad");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        fields(&status),
        ["name", "email", "phone", "address", "external_id"]
    );
    assert_eq!(
        status.message(),
        "Invalid name, email, phone, address, external_id"
    );
}

#[test]
fn a_set_optional_field_keeps_its_rules_even_when_empty() {
    // The optional patterns admit "" (read as absent by the services)...
    let request = companies::CreateCompanyRequest {
        name: "Acme".into(),
        phone: Some(String::new()),
        address: Some(String::new()),
        ..Default::default()
    };
    assert!(check(&request).is_ok());
    assert!(
        check(&dispatch::ListTasksRequest {
            driver_id: Some(String::new()),
            from: Some(String::new()),
            ..Default::default()
        })
        .is_ok()
    );
    // ...but `email` has no empty form: set, it must be an address (protovalidate semantics).
    let status = check(&companies::CreateCompanyRequest {
        name: "Acme".into(),
        email: Some(String::new()),
        ..Default::default()
    })
    .expect_err("an empty e-mail address");
    assert_eq!(fields(&status), ["email"]);
}

#[test]
fn required_text_and_uuids_and_bounds() {
    let status = check(&dispatch::CreateTaskRequest {
        company_id: "42".into(),
        title: String::new(),
        scheduled_for: "22/11/2026".into(),
        volume_liters: Some(-1.0),
        driver_id: Some(String::new()),
        ..Default::default()
    })
    .expect_err("bad task");
    assert_eq!(
        fields(&status),
        ["company_id", "title", "scheduled_for", "volume_liters"]
    );
    let status = check(&dispatch::ListTasksRequest {
        skip: Some(-1),
        limit: Some(0),
        ..Default::default()
    })
    .expect_err("bad page");
    assert_eq!(fields(&status), ["skip", "limit"]);
    assert!(
        check(&dispatch::ListTasksRequest {
            skip: Some(0),
            limit: Some(10_000),
            ..Default::default()
        })
        .is_ok(),
        "a large limit is capped by the service, not refused"
    );
    let status = check(&dispatch::CompleteTaskRequest {
        id: uuid::Uuid::nil().to_string(),
        volume_liters: Some(f64::NAN),
        notes: None,
    })
    .expect_err("NaN");
    assert_eq!(fields(&status), ["volume_liters"]);
}

#[test]
fn uuids_must_be_hyphenated() {
    let simple = uuid::Uuid::nil().simple().to_string();
    assert!(
        check(&companies::GetCompanyRequest { id: simple }).is_err(),
        "protovalidate's uuid is the hyphenated form"
    );
    assert!(
        check(&companies::GetCompanyRequest {
            id: "6F1C0E6E-2B1A-4C3E-9A53-0D2F4F7B9A10".into()
        })
        .is_ok()
    );
}

#[test]
fn phone_pattern_holds_exactly_what_the_services_normalise() {
    for good in ["+1 (555) 012-3456", "+44.20.7946.0958", "+1234567"] {
        let request = integrations::SendSmsRequest {
            to: good.into(),
            message: "hi".into(),
        };
        assert!(check(&request).is_ok(), "{good} refused");
        assert!(crate::validate::phone_e164(good).is_ok(), "{good}");
    }
    for bad in [
        "5550123456",
        "+1555abc1234",
        "+123456",
        "+1234567890123456",
        "+",
    ] {
        let request = integrations::SendSmsRequest {
            to: bad.into(),
            message: "hi".into(),
        };
        assert!(check(&request).is_err(), "{bad} accepted");
    }
}

#[test]
fn house_patterns_read_as_sentences_and_dates_have_a_format() {
    assert_eq!(
        describe_pattern(DATE_PATTERN),
        "must be a date written YYYY-MM-DD"
    );
    assert_eq!(pattern_format(DATE_PATTERN), Some(("date", false)));
    assert_eq!(pattern_format(OPTIONAL_UUID_PATTERN), Some(("uuid", true)));
    assert_eq!(pattern_format(PHONE_PATTERN), None);
    assert!(describe_pattern("^a$").contains("^a$"));
}

/// A pool of the contracts' own `buf/validate/validate.proto` plus one test file.
fn pool_with(test_proto: &str) -> Result<DescriptorPool, Box<dyn std::error::Error>> {
    // A directory per call: tests run on parallel threads of one process.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let scratch =
        std::env::temp_dir().join(format!("contract-rules-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    std::fs::write(scratch.join("rules_test.proto"), test_proto)?;
    let contracts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto");
    let mut compiler = protox::Compiler::new([scratch.as_path(), contracts.as_path()])?;
    compiler.open_file("rules_test.proto")?;
    let pool = compiler.descriptor_pool();
    std::fs::remove_dir_all(&scratch)?;
    Ok(pool)
}

#[test]
fn a_rule_the_evaluator_does_not_implement_refuses_to_load() {
    let cel = pool_with(
        r#"syntax = "proto3";
package rules_test;
import "buf/validate/validate.proto";
message Order {
  string code = 1 [(buf.validate.field).cel = {id: "code", expression: "this != ''"}];
}
"#,
    )
    .expect("the test contract compiles");
    let error = RuleBook::new(cel).expect_err("CEL is not implemented");
    assert_eq!(error.field, "rules_test.Order.code");
    assert!(
        matches!(&error.problem, RuleProblem::Unsupported { rule, .. } if rule == "cel"),
        "{error}"
    );

    let misplaced = pool_with(
        r#"syntax = "proto3";
package rules_test;
import "buf/validate/validate.proto";
message Order {
  int32 count = 1 [(buf.validate.field).string.min_len = 1];
}
"#,
    )
    .expect("the test contract compiles");
    assert!(
        RuleBook::new(misplaced).is_err(),
        "string rules on an int32"
    );
}

#[test]
fn an_update_checks_the_fields_it_sets_and_leaves_empty_ones_to_its_mask() {
    // A resource's fields carry the create rules; without presence, the empty value is "not
    // set" to the rules (whether the mask may name it empty is the service's call).
    let update = |company: companies::Company| companies::UpdateCompanyRequest {
        id: uuid::Uuid::nil().to_string(),
        company: Some(company),
        update_mask: None,
    };
    assert!(check(&update(companies::Company::default())).is_ok());
    assert!(
        check(&update(companies::Company {
            name: "Acme".into(),
            phone: Some(String::new()),
            ..Default::default()
        }))
        .is_ok()
    );
    let status = check(&update(companies::Company {
        name: "   ".into(),
        email: Some("not-an-email".into()),
        address: Some("a\0b".into()),
        ..Default::default()
    }))
    .expect_err("bad values");
    // Named as the mask (and a REST body's keys) name them.
    assert_eq!(fields(&status), ["name", "email", "address"]);
    let status = check(&dispatch::UpdateDriverRequest {
        id: uuid::Uuid::nil().to_string(),
        driver: Some(dispatch::Driver {
            status: 7,
            ..Default::default()
        }),
        update_mask: None,
    })
    .expect_err("an undefined status");
    assert_eq!(fields(&status), ["status"]);
}

#[test]
fn a_field_mask_may_not_name_what_its_rules_exclude() {
    let update = |paths: &[&str]| dispatch::UpdateTaskRequest {
        id: uuid::Uuid::nil().to_string(),
        task: Some(dispatch::Task::default()),
        update_mask: Some(prost_types::FieldMask {
            paths: paths.iter().map(|path| (*path).to_owned()).collect(),
        }),
    };
    assert!(check(&update(&["title", "notes", "id", "version"])).is_ok());
    let status = check(&update(&["title", "status", "driver_id"])).expect_err("excluded paths");
    assert_eq!(fields(&status), ["status", "driver_id"]);
    let details = tonic_types::StatusExt::get_error_details(&status);
    assert_eq!(
        details
            .bad_request()
            .expect("a BadRequest detail")
            .field_violations[0]
            .description,
        "cannot be changed by an update"
    );
    let rules = FieldMaskRules {
        only: vec!["a".into()],
        not_in: vec!["a.secret".into()],
    };
    assert!(rules.admits("a") && rules.admits("a.b"));
    assert!(!rules.admits("ab") && !rules.admits("a.secret.c") && !rules.admits("b"));
}

/// `UpdateIntegrationSettingsRequest` with its sections given as JSON (`None`: absent).
fn settings_update(
    vessey: Option<serde_json::Value>,
    slack: Option<serde_json::Value>,
    twilio: Option<serde_json::Value>,
) -> integrations::UpdateIntegrationSettingsRequest {
    let value = |json: serde_json::Value| -> prost_types::Value {
        let pool = &RuleBook::director().pool;
        let descriptor = pool
            .get_message_by_name("google.protobuf.Value")
            .expect("Value is in the contracts");
        DynamicMessage::deserialize(descriptor, json)
            .expect("any JSON is a Value")
            .transcode_to()
            .expect("a Value")
    };
    integrations::UpdateIntegrationSettingsRequest {
        vessey: vessey.map(value),
        slack: slack.map(value),
        twilio: twilio.map(value),
    }
}

fn description_of(status: &tonic::Status, field: &str) -> String {
    let details = tonic_types::StatusExt::get_error_details(status);
    details
        .bad_request()
        .and_then(|bad| bad.field_violations.iter().find(|v| v.field == field))
        .map(|violation| violation.description.clone())
        .unwrap_or_else(|| panic!("no violation of {field}: {status:?}"))
}

#[test]
fn an_object_in_a_value_keeps_the_rules_of_the_message_it_declares() {
    let vessey = serde_json::json!({"api_url": "https://api.vessey.example/v1", "api_key": "k-1"});
    let twilio = serde_json::json!({
        "account_sid": format!("AC{}", "0f".repeat(16)),
        "auth_token": "token",
        "from_number": "+1 555 010 0000",
    });
    // An object of the message, `null`, or absent.
    assert!(
        check(&settings_update(
            Some(vessey.clone()),
            Some(serde_json::Value::Null),
            None
        ))
        .is_ok()
    );
    assert!(check(&settings_update(None, None, Some(twilio))).is_ok());
    assert!(check(&settings_update(None, None, None)).is_ok());

    let status = check(&settings_update(
        Some(serde_json::json!({"api_url": "https://a b.example", "api_key": 7, "extra": 1})),
        Some(serde_json::json!({"webhook_url": "https://user:pw@hooks.slack.com/services/x"})),
        Some(serde_json::json!("yes")),
    ))
    .expect_err("every section is bad");
    assert_eq!(
        fields(&status),
        [
            "vessey.api_key",
            "vessey.extra",
            "vessey.api_url",
            "slack.webhook_url",
            "twilio"
        ]
    );
    assert_eq!(
        description_of(&status, "vessey.api_key"),
        "must be a string"
    );
    assert_eq!(
        description_of(&status, "vessey.extra"),
        "is not a field of this object (api_url, api_key)"
    );
    assert_eq!(
        description_of(&status, "vessey.api_url"),
        "must be an absolute URI (RFC 3986)"
    );
    assert_eq!(
        description_of(&status, "slack.webhook_url"),
        "must be an http:// or https:// URL with a host and no user name or password"
    );
    assert_eq!(
        description_of(&status, "twilio"),
        "must be an object or null"
    );

    // Over gRPC a Value may hold what JSON cannot (NaN): no object either, nor a removal.
    let nan = integrations::UpdateIntegrationSettingsRequest {
        slack: Some(prost_types::Value {
            kind: Some(prost_types::value::Kind::NumberValue(f64::NAN)),
        }),
        ..Default::default()
    };
    let status = check(&nan).expect_err("NaN is no object");
    assert_eq!(fields(&status), ["slack"]);

    // A URL is an absolute URI, http(s), with a host.
    for bad in [
        "/relative/path",
        "https://",
        "https://:443/x",
        "ftp://files.example",
    ] {
        let status = check(&settings_update(
            None,
            Some(serde_json::json!({ "webhook_url": bad })),
            None,
        ))
        .expect_err(bad);
        assert_eq!(fields(&status), ["slack.webhook_url"], "{bad}");
    }
    for good in [
        "https://hooks.slack.com/services/T/B/X",
        "HTTP://[2001:db8::1]:8080/h?a=b#c",
    ] {
        let update = settings_update(None, Some(serde_json::json!({ "webhook_url": good })), None);
        assert!(check(&update).is_ok(), "{good}");
    }

    // A section is replaced whole: every field of it is required.
    let status = check(&settings_update(
        Some(serde_json::json!({"api_url": "https://api.vessey.example"})),
        None,
        Some(serde_json::json!({"account_sid": "AC1", "auth_token": "", "from_number": null})),
    ))
    .expect_err("missing fields");
    assert_eq!(
        fields(&status),
        [
            "vessey.api_key",
            "twilio.account_sid",
            "twilio.auth_token",
            "twilio.from_number"
        ]
    );
}

#[test]
fn a_checked_object_reads_as_its_message() {
    let object = |json: serde_json::Value| -> prost_types::Struct {
        let request = settings_update(Some(json), None, None);
        match request.vessey.and_then(|value| value.kind) {
            Some(prost_types::value::Kind::StructValue(object)) => object,
            other => panic!("an object: {other:?}"),
        }
    };
    let read: integrations::VesseySettings = read_object(
        &object(serde_json::json!({"api_url": "https://v.example", "api_key": "k-1"})),
        "vessey",
    )
    .expect("a Vessey section");
    assert_eq!(read.api_url, "https://v.example");
    assert_eq!(read.api_key, "k-1");
    let status = read_object::<integrations::VesseySettings>(
        &object(serde_json::json!({"api_url": 1, "other": "x"})),
        "vessey",
    )
    .expect_err("not a Vessey section");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(fields(&status), ["vessey.api_url", "vessey.other"]);
}

#[test]
fn object_of_must_sit_on_a_value_and_name_a_message() {
    let on_a_string = pool_with(
        r#"syntax = "proto3";
package rules_test;
import "director/contract/v1/contract.proto";
message Order {
  string code = 1 [(director.contract.v1.object_of) = "rules_test.Order"];
}
"#,
    )
    .expect("the test contract compiles");
    let error = RuleBook::new(on_a_string).expect_err("not a Value");
    assert!(
        matches!(error.problem, RuleProblem::ObjectOfNotAValue),
        "{error}"
    );

    let unknown = pool_with(
        r#"syntax = "proto3";
package rules_test;
import "director/contract/v1/contract.proto";
import "google/protobuf/struct.proto";
message Order {
  google.protobuf.Value code = 1 [(director.contract.v1.object_of) = "rules_test.Nothing"];
}
"#,
    )
    .expect("the test contract compiles");
    let error = RuleBook::new(unknown).expect_err("an unknown message");
    assert_eq!(error.field, "rules_test.Order.code");
    assert!(
        matches!(&error.problem, RuleProblem::ObjectOfUnknown { message } if message == "rules_test.Nothing"),
        "{error}"
    );
}
