/*
 * Instructions that fault on purpose, for the self-tests. Each probe
 * returns 0 if it did not fault. The exception handler, armed through
 * x86::expected_fault(), resumes at fault_probe_resume, which returns 1:
 * probes push nothing, so the stack still holds the caller's return
 * address.
 */
	.section .text
	.code64
	.globl probe_ud, probe_de, probe_load, probe_store, probe_bp, fault_probe_resume

probe_ud:
	ud2
	xor %eax, %eax
	ret

probe_de:
	xor %ecx, %ecx
	mov $1, %eax
	xor %edx, %edx
	div %ecx
	xor %eax, %eax
	ret

/* uint64_t probe_load(uint64_t addr): #PF or #GP depending on addr. */
probe_load:
	mov (%rdi), %rax
	xor %eax, %eax
	ret

probe_store:
	movq $0, (%rdi)
	xor %eax, %eax
	ret

probe_bp:
	int3
	xor %eax, %eax
	ret

fault_probe_resume:
	mov $1, %eax
	ret

	.section .note.GNU-stack, "", @progbits
