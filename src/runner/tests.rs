//! Runner tests (filled below).
