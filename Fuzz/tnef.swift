// libFuzzer entry for FuzzTargets.tnef; built and run by scripts/fuzz.
import CarteiroFuzzing

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzTargets.tnef(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
