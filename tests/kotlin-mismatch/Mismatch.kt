// Run by scripts/test-kotlin.sh against bindings whose API checksums were
// altered on purpose (as if generated from another version of the library):
// loading must fail with the clear OccBindingMismatchException, not crash or
// corrupt memory.
package org.occ.mismatch

import kotlin.system.exitProcess
import org.occ.OccBindingMismatchException
import org.occ.ensureNativeLibrary

fun main() {
    try {
        ensureNativeLibrary()
        println("FAILED mismatch: a library that does not match its bindings was accepted")
        exitProcess(1)
    } catch (e: OccBindingMismatchException) {
        check("rebuild both" in (e.message ?: "")) { "unclear message: ${e.message}" }
        println("ok     bindings: a native library that does not match its bindings fails clearly at load (${e.message?.take(80)}…)")
    }
}
