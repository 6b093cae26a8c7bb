//! DNS: the message codec ([`message`]) and the UDP stub resolver ([`stub`]) that
//! `--dns-server` puts in the event loop.

pub mod message;
pub mod stub;
