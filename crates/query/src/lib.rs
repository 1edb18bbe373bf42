//! Investigating the store: the filter language ([`filter`]), its executor over sealed
//! segments and the WAL tail ([`exec`]), and the ready investigations ([`ask`]).

pub mod ask;
pub mod exec;
pub mod filter;
mod matching;
mod plan;
mod requests;
pub mod rows;
mod scan;
mod spec;
