// libFuzzer entry for FuzzTargets.rules; built and run by scripts/fuzz.
import CarteiroFuzzing

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzTargets.rules(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
