//! The built-in `core` module: Gumby's client callbacks (`echo`,
//! `annotate`, `set`, `stop`), always loaded. Written with the same
//! `#[module]` macro as any plugin; everything it does goes through the host
//! context.

use peerlab_plugin_api::{Host, module};

/// The `core` module (stateless).
#[derive(Debug, Default)]
pub struct Core;

/// Gumby's client callbacks: echo, annotate, set, stop.
#[module(name = "core", export = false)]
impl Core {
    /// Print the words to the instance's output: `echo WORD...`.
    #[callback]
    fn echo(&mut self, host: &mut Host, #[rest] words: Vec<String>) {
        host.print(words.join(" "));
    }

    /// Record an annotation at the current time: `annotate TEXT...`.
    #[callback]
    fn annotate(&mut self, host: &mut Host, text: String, #[rest] more: Vec<String>) {
        let mut t = text;
        for w in more {
            t.push(' ');
            t.push_str(&w);
        }
        host.annotate(t);
    }

    /// Set a scenario variable (a string), as Gumby's `set NAME VALUE`.
    #[callback]
    fn set(&mut self, host: &mut Host, name: String, value: String) {
        host.set_var(&name, &value);
    }

    /// Stop this instance.
    #[callback]
    fn stop(&mut self, host: &mut Host) {
        host.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peerlab_plugin_api::testing::TestHost;

    #[test]
    fn core_callbacks_use_the_host() {
        let mut th = TestHost::new(1, 2);
        let mut c = Core;
        c.echo(&mut th.host(), vec!["a".into(), "b".into()]);
        c.annotate(&mut th.host(), "start".into(), vec!["now".into()]);
        c.set(&mut th.host(), "x".into(), "1".into());
        c.stop(&mut th.host());
        assert_eq!(th.prints, ["a b"]);
        assert_eq!(th.annotations, [(0.0, "start now".to_string())]);
        assert_eq!(th.vars.get("x").map(String::as_str), Some("1"));
        assert!(th.stopped);
    }
}
