/*
 * A stand-in for Windows' bcryptprimitives.dll, for running Rust programs under wine 8.
 *
 * Rust's std (x86_64-pc-windows-gnu and -msvc since Rust 1.78) imports ProcessPrng from
 * bcryptprimitives.dll for its random seeds (HashMap keys). Wine 8 has no such DLL, so the
 * loader refuses the program before main. This one exports ProcessPrng only, filling the
 * buffer from advapi32's RtlGenRandom (exported as SystemFunction036), which wine implements
 * with the host's random source. Built with x86_64-w64-mingw32-gcc by test_support::wine_stub.
 */
#include <windows.h>

/* advapi32's RtlGenRandom. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/* Documented to always succeed (it returns TRUE); a failing source is reported anyway. */
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
