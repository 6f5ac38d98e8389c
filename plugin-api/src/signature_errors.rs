//! Compile-fail checks of the `#[module]` macro: a wrong callback signature,
//! or a benchmark workload naming what the module does not declare, is a
//! compile error, not a runtime surprise. (Doc tests only.)
//!
//! An unsupported parameter type:
//!
//! ```compile_fail
//! use peerlab_plugin_api::{module, Host};
//! #[derive(Default)]
//! pub struct M;
//! #[module(name = "m")]
//! impl M {
//!     #[callback]
//!     fn f(&mut self, host: &mut Host, x: Vec<u8>) {}
//! }
//! ```
//!
//! A callback without `self`:
//!
//! ```compile_fail
//! use peerlab_plugin_api::module;
//! #[derive(Default)]
//! pub struct M;
//! #[module(name = "m")]
//! impl M {
//!     #[callback]
//!     fn f(x: i64) {}
//! }
//! ```
//!
//! The host anywhere but right after `self`:
//!
//! ```compile_fail
//! use peerlab_plugin_api::{module, Host};
//! #[derive(Default)]
//! pub struct M;
//! #[module(name = "m")]
//! impl M {
//!     #[callback]
//!     fn f(&mut self, x: i64, host: &mut Host) {}
//! }
//! ```
//!
//! A module without a name:
//!
//! ```compile_fail
//! use peerlab_plugin_api::module;
//! #[derive(Default)]
//! pub struct M;
//! #[module]
//! impl M {}
//! ```
//!
//! A wrong `on_timer` hook:
//!
//! ```compile_fail
//! use peerlab_plugin_api::{module, Host};
//! #[derive(Default)]
//! pub struct M;
//! #[module(name = "m")]
//! impl M {
//!     #[on_timer]
//!     fn t(&mut self, host: &mut Host) {}
//! }
//! ```
//!
//! A benchmark workload whose `done` is not one of the module's metrics:
//!
//! ```compile_fail
//! use peerlab_plugin_api::module;
//! #[derive(Default)]
//! pub struct M;
//! #[module(name = "m", export = false, config = ["k: a key"], metrics = [observation(t, unit = "s", "time")],
//!     bench(start = "go", done = elsewhere, messages = ["ping"]))]
//! impl M {}
//! ```
//!
//! ... or is not an observation:
//!
//! ```compile_fail
//! use peerlab_plugin_api::module;
//! #[derive(Default)]
//! pub struct M;
//! #[module(name = "m", export = false, config = ["k: a key"], metrics = [counter(t, unit = "s", "time")],
//!     bench(start = "go", done = t, messages = ["ping"]))]
//! impl M {}
//! ```
//!
//! ... whose fanout key the module does not declare:
//!
//! ```compile_fail
//! use peerlab_plugin_api::module;
//! #[derive(Default)]
//! pub struct M;
//! #[module(name = "m", export = false, config = ["k: a key"], metrics = [observation(t, unit = "s", "time")],
//!     bench(start = "go", done = t, messages = ["ping"], fanout = "other"))]
//! impl M {}
//! ```
//!
//! ... or that counts no messages:
//!
//! ```compile_fail
//! use peerlab_plugin_api::module;
//! #[derive(Default)]
//! pub struct M;
//! #[module(name = "m", export = false, config = ["k: a key"], metrics = [observation(t, unit = "s", "time")],
//!     bench(start = "go", done = t))]
//! impl M {}
//! ```
//!
//! The same workload written correctly compiles:
//!
//! ```
//! use peerlab_plugin_api::{module, Module};
//! #[derive(Default)]
//! pub struct M;
//! #[module(name = "m", export = false, config = ["k: a key"], metrics = [observation(t, unit = "s", "time")],
//!     bench(start = "go", done = t, messages = ["ping"], fanout = "k"))]
//! impl M {}
//! assert_eq!(M::BENCH.unwrap().fanout, "k");
//! ```
//!
//! And the same module written correctly compiles:
//!
//! ```
//! use peerlab_plugin_api::{module, Host};
//! #[derive(Default)]
//! pub struct M;
//! #[module(name = "m", export = false)]
//! impl M {
//!     #[callback]
//!     fn f(&mut self, host: &mut Host, x: i64, #[kw] y: Option<f64>, #[rest] z: Vec<String>) {}
//!     #[on_timer]
//!     fn t(&mut self, host: &mut Host, token: u64) {}
//! }
//! ```
