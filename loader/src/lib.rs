//! peerlab-loader: finding, checking and loading plugin files, one job.
//!
//! - [`SearchPaths`] (`search.rs`): where plugin files are looked for, in
//!   order, and the file names a module name may have.
//! - [`elf::check_extent`]: a plugin file cut short is refused before
//!   `dlopen` maps it (which would die of SIGBUS).
//! - [`load_library`] (`load.rs`): one library opened by its canonical path
//!   through its own abi_stable header, its version and layout checked.
//! - [`alias`]: Gumby's dotted module names and the peerlab names they mean.
//! - [`LoadError`], [`LoadErrors`] (`error.rs`): every refusal says what was
//!   asked for, which file, why, and what to do.
//!
//! **Invariant:** every library is loaded by its absolute path through its
//! own header (never `RootModule::load_from*`, which caches one module per
//! type, and never by a bare name `dlopen` would look up in the library
//! search path), after its ELF extent is checked, and is never unloaded.
//! Nothing here calls into a module beyond reading its root; which modules
//! are built in, and what a loaded module offers, is the host's registry's
//! (`host/src/modules/`).
//!
//! **Invariant:** depends on `peerlab-plugin-api` and nothing else of ours;
//! no async runtime (`tests/tests/tidy.rs`).

pub mod alias;
pub mod elf;
mod error;
mod load;
mod search;

pub use error::{LoadError, LoadErrorKind, LoadErrors};
pub use load::load_library;
pub use search::{PLUGIN_PATH_ENV, SearchPaths, target_dirs_near};
