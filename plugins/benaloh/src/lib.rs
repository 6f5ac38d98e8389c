//! The Benaloh secret-sharing experiment (the Gumby workshop's), as a plugin.
