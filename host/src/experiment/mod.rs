//! The experiment as the host reads and plans it, shared by the
//! subcommands and the runners: [`load`] reads the files (lang parses and
//! types them), [`plan`] applies the command line's overrides and checks
//! what depends on them, and [`shared`] rebuilds from `run.json` what the
//! instances of a run share; [`topology`] reads the topology it names.
//!
//! No subcommand's argument parsing lives here, and nothing here prints.

mod error;
pub mod external;
pub mod load;
pub mod plan;
pub mod shared;
pub mod topology;

pub use error::ExperimentError;
pub use load::{Loaded, check_loaded, check_modules, load, read_source, resolve_modules};
pub use plan::{
    Overrides, Plan, RunChoices, check_capacity, check_host_keys, check_plan, plan_run,
    run_settings,
};
