//! What a failed call tells about where it got: whether any replica saw it.
//!
//! - [`Failure::NeverArrived`]: the connection could not be opened ([`ConnectFailed`]), the
//!   server refused the stream (`REFUSED_STREAM`), the stream was above the last id of the
//!   server's GOAWAY, or hyper cancelled it before sending (its connection closed first).
//!   Any call may be sent again.
//! - [`Failure::Lost`]: the connection failed while the call was out; the replica may have
//!   acted on it. Only calls without side effects may be sent again.
//! - [`Failure::Reset`]: the replica reset the call's stream (`CANCEL` when its deadline
//!   passed, say), on a connection that is fine: that is its answer, passed on as tonic reads
//!   it.

use std::error::Error as StdError;

use tonic::Status;

use super::replica::ConnectFailed;

/// How a call failed below gRPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No replica saw the call.
    NeverArrived,
    /// The connection was lost with the call on it.
    Lost,
    /// The replica reset the call's stream.
    Reset,
}

/// `error` and every error below it.
fn causes<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |error: &&'a (dyn StdError + 'static)| {
        (*error).source()
    })
}

impl Failure {
    /// What a channel's error says. A channel only fails below gRPC (a replica's own
    /// answer, errors included, is a response), so everything not known to be
    /// [`Failure::NeverArrived`] is [`Failure::Lost`].
    pub fn of(error: &(dyn StdError + 'static)) -> Self {
        for cause in causes(error) {
            if cause.is::<ConnectFailed>() {
                return Self::NeverArrived;
            }
            if let Some(h2) = cause.downcast_ref::<h2::Error>() {
                let refused = h2.reason() == Some(h2::Reason::REFUSED_STREAM);
                let above_goaway = h2.is_go_away() && h2.is_remote();
                return if refused || above_goaway {
                    Self::NeverArrived
                } else if h2.is_reset() && h2.is_remote() {
                    Self::Reset
                } else {
                    Self::Lost
                };
            }
            if let Some(hyper) = cause.downcast_ref::<hyper::Error>()
                && hyper.is_canceled()
            {
                return Self::NeverArrived;
            }
        }
        Self::Lost
    }
}

/// Whether `status` (an error of a response body) says the connection was lost, rather than
/// the replica's own answer: tonic turns transport errors into statuses with the error as
/// source.
pub fn is_connection_lost(status: &Status) -> bool {
    StdError::source(status).is_some_and(|source| {
        let transport = causes(source).any(|cause| {
            cause.is::<h2::Error>() || cause.is::<hyper::Error>() || cause.is::<std::io::Error>()
        });
        transport && Failure::of(source) != Failure::Reset
    })
}

/// What a caller hears when the replicas could not answer: UNAVAILABLE (retryable), never
/// INTERNAL or UNKNOWN. The message names no address: it may reach end users.
pub fn unavailable() -> Status {
    Status::unavailable("Service unavailable")
}

/// What a caller hears when the connection was lost while its answer was streaming.
pub fn connection_lost() -> Status {
    Status::unavailable("the connection to the service was lost; try again")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_never_opened_is_never_arrived() {
        let refused = ConnectFailed::for_test(std::io::ErrorKind::ConnectionRefused);
        let wrapped: Box<dyn StdError + Send + Sync> = Box::new(refused);
        assert_eq!(Failure::of(wrapped.as_ref()), Failure::NeverArrived);
    }

    #[test]
    fn refused_streams_never_arrived_and_resets_are_lost() {
        let refused = h2::Error::from(h2::Reason::REFUSED_STREAM);
        assert_eq!(Failure::of(&refused), Failure::NeverArrived);
        let library = h2::Error::from(h2::Reason::INTERNAL_ERROR);
        assert_eq!(Failure::of(&library), Failure::Lost);
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(Failure::of(&io), Failure::Lost);
    }

    #[test]
    fn transport_statuses_are_told_from_the_services_own() {
        let from_io = Status::from_error(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert!(is_connection_lost(&from_io));
        assert!(!is_connection_lost(&Status::internal(
            "a bug in the service"
        )));
    }
}
