//! The UniFFI bindings generator, built from this workspace so its version
//! always matches the `uniffi` the library was built with.

fn main() {
    uniffi::uniffi_bindgen_main()
}
