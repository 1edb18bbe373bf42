//! One module per subcommand.

pub mod generate;
pub mod policy;
pub mod prove;
pub mod query;
pub mod serve;
pub mod store;
