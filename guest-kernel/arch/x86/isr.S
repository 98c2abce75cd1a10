/*
 * Interrupt entry stubs: one per vector. Each pushes a dummy error code
 * where the CPU pushes none, then the vector number, and joins the common
 * path, which saves the general registers and the SSE state (handlers are
 * ordinary C++ that may use SSE) and calls interrupt_dispatch(frame).
 */
	.section .text
	.code64

.macro ISR_NOERR vec
	.balign 16
isr_\vec:
	pushq $0
	pushq $\vec
	jmp isr_common
.endm

.macro ISR_ERR vec
	.balign 16
isr_\vec:
	pushq $\vec
	jmp isr_common
.endm

/* Vectors for which the CPU pushes an error code. */
.altmacro
.macro ISR vec
  .if (\vec == 8) || (\vec >= 10 && \vec <= 14) || (\vec == 17) || (\vec == 21) || (\vec == 29) || (\vec == 30)
	ISR_ERR %vec
  .else
	ISR_NOERR %vec
  .endif
.endm

.set i, 0
.rept 256
	ISR %i
	.set i, i + 1
.endr

isr_common:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	mov %rsp, %rdi              /* InterruptFrame* */
	mov %rsp, %rbx              /* callee-saved: restores rsp below */
	sub $512, %rsp
	and $~15, %rsp
	fxsave64 (%rsp)
	cld
	call interrupt_dispatch
	fxrstor64 (%rsp)
	mov %rbx, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	add $16, %rsp               /* vector and error code */
	iretq

.macro ISR_ADDR vec
	.quad isr_\vec
.endm

/* The table of stub addresses idt.cc installs. */
	.section .rodata
	.balign 8
	.globl isr_stub_table
isr_stub_table:
.set i, 0
.rept 256
	ISR_ADDR %i
	.set i, i + 1
.endr

	.section .note.GNU-stack, "", @progbits
