//! Golden-output tests for every format.
