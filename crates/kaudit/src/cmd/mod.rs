//! One module per subcommand.

pub mod alerts;
pub mod detect;
pub mod generate;
pub mod policy;
pub mod prove;
pub mod query;
pub mod serve;
pub mod store;
