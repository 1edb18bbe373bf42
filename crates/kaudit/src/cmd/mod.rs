//! One module per subcommand.

pub mod generate;
pub mod policy;
pub mod prove;
pub mod query;
pub mod store;
