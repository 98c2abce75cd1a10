/*
 * From UEFI's 64-bit long mode to the PVH entry state: 32-bit protected
 * mode, paging off, flat 4 GiB CS (32-bit code) and DS/ES/SS (data),
 * interrupts off, %ebx = start info.
 *
 * The loader copies the bytes between pvh_trampoline_start and
 * pvh_trampoline_end to a page below 4 GiB and calls the copy, after
 * ExitBootServices, as  void f(uint32_t entry, uint32_t start_info)  (SysV:
 * %edi, %esi). Why a copy: the instruction that turns paging off must run
 * from an identity-mapped page (the next fetch uses the same address with
 * paging off), and our EFI image may sit above 4 GiB, which 32-bit code
 * cannot reach. UEFI identity-maps all memory, so any page below 4 GiB
 * qualifies. Hence the code is position independent: 64-bit code addresses
 * its data %rip-relative, 32-bit code uses no memory operand at all, and
 * the GDT base and far-return target are computed at run time.
 *
 * The sequence is the one the SDM (vol. 3, 10.8.5.4, "Initializing IA-32e
 * mode", in reverse) gives for leaving IA-32e mode:
 *   1. far return into a 32-bit code segment: compatibility mode;
 *   2. clear CR0.PG: the CPU leaves IA-32e mode (EFER.LMA becomes 0);
 *   3. clear EFER.LME, so that the kernel can enter long mode afresh;
 *   4. flat data segments, clean CR0/CR4/EFLAGS, %ebx, jump to the entry.
 * It must fit in one page (the loader checks).
 */

#define CR0_PE      0x00000001
#define CR0_ET      0x00000010
#define CR0_NE      0x00000020
#define CR0_WP      0x00010000
#define CR0_PG      0x80000000
#define CR4_PCIDE   (1 << 17)
#define CR4_CET     (1 << 23)
#define MSR_EFER    0xc0000080
#define EFER_LME    (1 << 8)

#define SEL_CODE32  0x08
#define SEL_DATA    0x10

	/* .text.* lands in the EFI image's .text (gnu-efi's linker script). */
	.section .text.pvh_trampoline, "ax"
	.code64
	.balign 16
	.globl pvh_trampoline_start
	.hidden pvh_trampoline_start
pvh_trampoline_start:
	cli                            /* already off after ExitBootServices; be sure */
	cld
	mov %esi, %ebx                 /* PVH: %ebx = start info; survives the switch */
	/* %edi (entry) also survives: mode switches keep the low 32 bits. */

	/* Clearing CR0.PG faults while CR4.PCIDE is set, clearing CR0.WP
	 * while CR4.CET is set; CET shadow stacks would also check the far
	 * return below. Both can only be dropped here, in 64-bit mode. */
	mov %cr4, %rax
	and $~(CR4_PCIDE | CR4_CET), %rax
	mov %rax, %cr4

	/* This page holds our stack and GDT pointer as well as code. Should
	 * the firmware have mapped loader code read-only, supervisor writes
	 * still succeed with CR0.WP clear; the machine is ours now. */
	mov %cr0, %rax
	and $~CR0_WP, %rax
	mov %rax, %cr0

	/* Our own stack, in this page: the firmware's may be above 4 GiB,
	 * and compatibility mode uses only %esp. */
	lea tramp_stack_top(%rip), %rsp

	/* Our GDT: the firmware's has no selector guaranteed to be a flat
	 * 32-bit code segment. The base is only known now. */
	lea tramp_gdt(%rip), %rax
	mov %rax, tramp_gdtr_base(%rip)
	lgdt tramp_gdtr(%rip)

	/* An empty IDT: an NMI in the middle of the switch would otherwise
	 * run a 64-bit firmware handler in the wrong mode; now it shuts the
	 * machine down (visible) instead of corrupting it (silent). */
	lidt tramp_idtr(%rip)

	/* Far return to compatibility mode: lretq pops %rip, then %cs. */
	lea tramp_compat(%rip), %rax
	pushq $SEL_CODE32
	pushq %rax
	lretq

	.code32
tramp_compat:
	/* Compatibility mode, still paged through the firmware's (identity)
	 * tables. %ss first: its cached descriptor is the firmware's. */
	mov $SEL_DATA, %ax
	mov %ax, %ss
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %fs
	mov %ax, %gs

	/* Paging off: this leaves IA-32e mode. */
	mov %cr0, %eax
	and $~CR0_PG, %eax
	mov %eax, %cr0

	/* Long mode off, so that the kernel's entry can turn it on again
	 * with its own page tables. */
	mov $MSR_EFER, %ecx
	rdmsr
	and $~EFER_LME, %eax
	wrmsr

	/* The PVH ABI's clean state: CR4 all clear (PAE can go now that
	 * paging is off), CR0 only PE plus ET and NE (native x87 error
	 * reporting, which a 64-bit kernel assumes), no stale CR3. */
	xor %eax, %eax
	mov %eax, %cr4
	mov %eax, %cr3
	mov $(CR0_PE | CR0_ET | CR0_NE), %eax
	mov %eax, %cr0

	/* EFLAGS: IF, DF and AC clear, only the always-one bit 1 set. */
	pushl $2
	popfl

	jmp *%edi

	.balign 8
tramp_gdt:
	.quad 0
	.quad 0x00cf9a000000ffff       /* 0x08: code, 32-bit, base 0, 4 GiB, DPL 0 */
	.quad 0x00cf92000000ffff       /* 0x10: data, read/write, base 0, 4 GiB */
tramp_gdt_end:

	.balign 8
	.word 0, 0, 0                  /* aligns the 8-byte base below */
tramp_gdtr:
	.word tramp_gdt_end - tramp_gdt - 1
tramp_gdtr_base:
	.quad 0                        /* filled in at run time */

	.balign 8
	.word 0, 0, 0
tramp_idtr:
	.word 0                        /* limit 0: no vector is valid */
	.quad 0

	.balign 16
	.skip 128                      /* the lretq frame needs 16 bytes */
tramp_stack_top:

	.globl pvh_trampoline_end
	.hidden pvh_trampoline_end
pvh_trampoline_end:

	.section .note.GNU-stack, "", @progbits
