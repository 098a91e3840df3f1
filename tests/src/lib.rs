//! Whole-system tests of liutong: several nodes on loopback, driven as a user
//! would. The tests live in `tests/system/`; this library is empty.
