// Package domain is the root of hinscore's format-neutral core: what every
// exchange format and every stage shares, with no dependency beyond the
// standard library and github.com/google/uuid. Its packages:
//
//   - ids: the deterministic ids of observed messages and request chains;
//   - partition: which linker partition a correlation key belongs to, and
//     the one owner of the partition count;
//   - patient: the HMAC patient token, the only patient identity kept
//     outside the sealed original bytes;
//   - exception: the 45 CFR part 171 exceptions and redirect codes, as one
//     versioned table;
//   - outcome: the outcome classes, named as analysts see them;
//   - calendar: US federal business days, holidays computed, for SLAs;
//   - purpose: exchange purpose codes of every system mapped to one
//     canonical purpose, as one versioned table;
//   - text: bounding a sender's text;
//   - csvsafe: CSV that spreadsheets open as data, never as formulas;
//   - quality: the data-quality flags an observed message may carry;
//   - testenv (imported by tests only): whether a test that lacks
//     something from the machine skips or fails.
package domain
