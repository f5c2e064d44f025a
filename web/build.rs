// The browser client in dist/ is embedded at compile time: rebuild when
// any file there changes, is added or is removed.
fn main() {
    println!("cargo:rerun-if-changed=dist");
}
