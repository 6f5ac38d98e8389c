//! Compile-fail checks of the `#[module]` macro: a wrong callback signature
//! is a compile error, not a runtime surprise. (Doc tests only.)
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
