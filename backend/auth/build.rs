// sqlx::migrate! embeds the migrations when the crate compiles; without this
// a new migration alone would not rebuild the crate, and the binary would
// carry the old set.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations/auth");
}
