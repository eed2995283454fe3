//! The `director` command's library: the development stack (`director up`) that the end-to-end
//! tests start too, database migrations for every service, token minting, and following
//! Integrations jobs from the terminal.

pub mod fakes;
pub mod health;
pub mod jobs;
pub mod migrate;
pub mod openapi;
pub mod stack;
pub mod token;
