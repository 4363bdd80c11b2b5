// libFuzzer entry for FuzzTargets.message; built and run by scripts/fuzz.
import CarteiroFuzzing

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzTargets.message(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
