//! Bounded retries of what the server says to retry. (Being written.)
