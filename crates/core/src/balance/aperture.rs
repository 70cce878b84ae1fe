//! `aperture` (being written).
