//! The local image store of stasis: images imported from a root filesystem
//! tar or loaded from an image archive, kept under `<state root>/images/`
//! with each layer unpacked once into a directory, so that containers can
//! stack an image's layers as overlayfs lower directories.
//!
//! - [`Images`] — the store: [`Images::import`] (a root filesystem tar, as
//!   `docker import` sends it: one layer, a fresh config with `--change`s
//!   applied), [`Images::load`] (a `docker save` archive or an OCI image
//!   archive, gzip or not), [`Images::list`], [`Images::resolve`] (`NAME`,
//!   `NAME:TAG`, a full or short ID, `sha256:ID`), [`ImageRecord::inspect`]
//!   (docker's `GET /images/{name}/json` shape), [`Images::remove`], and
//!   [`Images::lower_dirs`] for the overlay.
//! - [`Digest`] — `sha256:` digests. An image's ID is the digest of its
//!   config (docker's `ImageID`); a layer is named by its `diff_id`.
//! - [`Reference`] — `NAME[:TAG]`; [`Change`] — a `--change` instruction;
//!   [`ImageConfig`] — the config document.
//! - [`Error`] — one variant per operation, with predicates
//!   ([`Error::is_not_found`], [`Error::is_conflict`], [`Error::is_invalid`]).
//!
//! Unpacking is safe against hostile archives (no `..`, absolute paths,
//! writes through symlinks or hard links out; device nodes only as root),
//! and turns OCI whiteouts into overlayfs ones (see `layer`).
//!
//! ```no_run
//! use images::{Images, Import, Reference};
//! let images = Images::open("/run/stasis".as_ref())?;
//! let name = Reference::parse("busybox")?;
//! let tar = std::fs::File::open("rootfs.tar").map_err(|e| images::Error::ReadArchive {
//!     entry: "rootfs.tar".into(),
//!     source: e,
//! })?;
//! let image = images.import(tar, &Import {
//!     reference: Some(&name),
//!     changes: &[],
//!     created: "2026-12-01T00:00:00Z",
//! })?;
//! let lower = images.lower_dirs(&image);
//! # Ok::<(), images::Error>(())
//! ```
//!
//! It does not pull from or push to registries, build images, sign or
//! verify them, or know about containers: the caller says which containers
//! use an image and which layers they mount ([`Removal`]).

#![deny(unsafe_code)]

mod archive;
mod config;
mod digest;
mod error;
mod layer;
mod reference;
mod store;

pub use config::{Change, ContainerConfig, ImageConfig, RootFs};
pub use digest::Digest;
pub use error::{Error, Result};
pub use reference::Reference;
pub use store::{ImageRecord, Images, Import, Loaded, Removal, Removed};

#[cfg(test)]
mod tests;
