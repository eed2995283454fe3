//! `load_env_files_from` really sets process variables. Kept alone in its own test binary
//! (one process, one test) because it mutates the process environment.
#![allow(clippy::unwrap_used)]

use director_platform::config::{Env, load_env_files_from};

#[test]
fn loading_env_files_sets_only_variables_that_are_not_already_set() {
    // The process may already have ENVIRONMENT (CI); `.env` supplies it otherwise.
    let environment = std::env::var("ENVIRONMENT")
        .ok()
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| "staging".to_owned());
    let dir = std::env::temp_dir().join(format!("platform-env-load-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(".env"),
        "ENVIRONMENT=staging\nPLATFORM_LOAD_TEST_SHARED=env\nPLATFORM_LOAD_TEST_LAYERED=env\nPATH=/nope\n",
    )
    .unwrap();
    std::fs::write(
        dir.join(format!(".env.{environment}")),
        "PLATFORM_LOAD_TEST_LAYERED=specific\n",
    )
    .unwrap();
    let path_before = std::env::var("PATH").ok();

    let loaded = load_env_files_from(&dir).unwrap();

    assert_eq!(
        loaded,
        vec![dir.join(".env"), dir.join(format!(".env.{environment}"))]
    );
    let env = Env::from_process();
    assert_eq!(
        env.string("PLATFORM_LOAD_TEST_SHARED").as_deref(),
        Some("env")
    );
    assert_eq!(
        env.string("PLATFORM_LOAD_TEST_LAYERED").as_deref(),
        Some("specific")
    );
    assert_eq!(
        std::env::var("PATH").ok(),
        path_before,
        "an existing variable was overridden"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
