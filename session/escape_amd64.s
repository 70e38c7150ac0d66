//go:build !purego

#include "textflag.h"

// func cleanPrefix(text []byte) int
//
// The length of the leading run of text whose bytes are all printable ASCII
// (0x20 to 0x7e) other than a backslash, counted in whole blocks of 16 bytes
// (SSE2, which every amd64 has): 64 bytes a step, then 16.
TEXT ·cleanPrefix(SB), NOSPLIT, $0-32
	MOVQ text_base+0(FP), SI
	MOVQ text_len+8(FP), CX
	XORQ AX, AX
	MOVQ $0x1f1f1f1f1f1f1f1f, DX
	MOVQ DX, X4
	PUNPCKLQDQ X4, X4 // 0x1f in each byte
	MOVQ $0x7f7f7f7f7f7f7f7f, DX
	MOVQ DX, X5
	PUNPCKLQDQ X5, X5 // 0x7f
	MOVQ $0x5c5c5c5c5c5c5c5c, DX
	MOVQ DX, X6
	PUNPCKLQDQ X6, X6 // '\\'

loop64:
	LEAQ 64(AX), DX
	CMPQ DX, CX
	JHI  loop16
	MOVOU (SI)(AX*1), X0
	MOVOU 16(SI)(AX*1), X1
	MOVOU 32(SI)(AX*1), X2
	MOVOU 48(SI)(AX*1), X3

	// For each block: (b > 0x1f) & (0x7f > b) & ^(b == '\\'), signed bytes,
	// so that those from 0x80 up fail the first test.
	MOVO    X0, X8
	PCMPGTB X4, X8
	MOVO    X5, X9
	PCMPGTB X0, X9
	PCMPEQB X6, X0
	PAND    X9, X8
	PANDN   X8, X0

	MOVO    X1, X8
	PCMPGTB X4, X8
	MOVO    X5, X9
	PCMPGTB X1, X9
	PCMPEQB X6, X1
	PAND    X9, X8
	PANDN   X8, X1

	MOVO    X2, X8
	PCMPGTB X4, X8
	MOVO    X5, X9
	PCMPGTB X2, X9
	PCMPEQB X6, X2
	PAND    X9, X8
	PANDN   X8, X2

	MOVO    X3, X8
	PCMPGTB X4, X8
	MOVO    X5, X9
	PCMPGTB X3, X9
	PCMPEQB X6, X3
	PAND    X9, X8
	PANDN   X8, X3

	PAND     X1, X0
	PAND     X3, X2
	PAND     X2, X0
	PMOVMSKB X0, DX
	CMPL     DX, $0xffff
	JNE      loop16
	ADDQ     $64, AX
	JMP      loop64

loop16:
	LEAQ 16(AX), DX
	CMPQ DX, CX
	JHI  done
	MOVOU   (SI)(AX*1), X0
	MOVO    X0, X8
	PCMPGTB X4, X8
	MOVO    X5, X9
	PCMPGTB X0, X9
	PCMPEQB X6, X0
	PAND    X9, X8
	PANDN   X8, X0
	PMOVMSKB X0, DX
	CMPL    DX, $0xffff
	JNE     done
	ADDQ    $16, AX
	JMP     loop16

done:
	MOVQ AX, ret+24(FP)
	RET
