fn main() {
    // Rebuild when the UI is (re)built, so the embedded copy is current.
    println!("cargo:rerun-if-changed=ui/dist");
}
