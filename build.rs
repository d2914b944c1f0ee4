//! Rebuilds the crate when a migration is added: `embed_migrations!` reads the migrations
//! folder at compile time, but cargo only watches the files it already embedded.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
