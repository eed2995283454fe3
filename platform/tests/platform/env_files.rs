//! `.env` and `.env.<ENVIRONMENT>` layering, read without touching the process environment.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use director_platform::config::{Env, read_env_files};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("platform-env-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn write(&self, name: &str, contents: &str) {
        std::fs::write(self.0.join(name), contents).unwrap();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn layered(dir: &TempDir, process: &Env) -> Env {
    process
        .clone()
        .with_defaults(read_env_files(&dir.0, process).unwrap())
}

#[test]
fn the_environment_file_refines_dot_env_and_the_process_wins_over_both() {
    let dir = TempDir::new();
    dir.write(
        ".env",
        "# shared defaults\nSHARED=from-env\nOVERRIDDEN=from-env\nFROM_PROCESS=from-env\n",
    );
    dir.write(
        ".env.staging",
        "OVERRIDDEN=from-staging\nSTAGING_ONLY=\"quoted value\"\n",
    );
    dir.write(".env.dev", "OVERRIDDEN=from-dev\n");

    let process = Env::from_pairs([("ENVIRONMENT", "staging"), ("FROM_PROCESS", "process")]);
    let env = layered(&dir, &process);

    assert_eq!(env.string("SHARED").as_deref(), Some("from-env"));
    assert_eq!(env.string("OVERRIDDEN").as_deref(), Some("from-staging"));
    assert_eq!(env.string("STAGING_ONLY").as_deref(), Some("quoted value"));
    assert_eq!(env.string("FROM_PROCESS").as_deref(), Some("process"));
}

#[test]
fn environment_can_come_from_dot_env_and_defaults_to_dev() {
    let dir = TempDir::new();
    dir.write(".env.prod", "PICKED=prod\n");
    dir.write(".env.dev", "PICKED=dev\n");

    let env = layered(&dir, &Env::default());
    assert_eq!(env.string("PICKED").as_deref(), Some("dev"));

    dir.write(".env", "ENVIRONMENT=prod\n");
    let env = layered(&dir, &Env::default());
    assert_eq!(env.string("PICKED").as_deref(), Some("prod"));
    assert_eq!(env.string("ENVIRONMENT").as_deref(), Some("prod"));
}

#[test]
fn missing_files_are_fine_and_a_malformed_file_names_itself() {
    let dir = TempDir::new();
    assert!(read_env_files(&dir.0, &Env::default()).unwrap().is_empty());

    dir.write(".env", "GOOD=1\nTHIS IS NOT AN ASSIGNMENT\n");
    let error = read_env_files(&dir.0, &Env::default()).unwrap_err();
    assert!(error.variable.ends_with(".env"), "{error}");
}
