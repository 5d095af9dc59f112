//! Loopback demo auth server and the Seamless story (work in progress).
