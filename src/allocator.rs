//! The component's allocator: dlmalloc, as the standard library uses on wasm32, whose first
//! region is the rest of the initial linear memory.
//!
//! dlmalloc's own wasm32 backend asks `memory.grow` for every region, even when the linker
//! left free space in the initial memory (it uses that space only on `wasm32-unknown-unknown`).
//! Growing a memory costs the host an `mprotect`, and a pooled slot is shrunk back with
//! another before its next instance: two page-table changes with TLB shootdowns in every
//! fresh instance's first call. The component is linked with an initial memory that holds
//! the stack, the static data and a heap for a typical call (`build.rs`), and that heap is
//! handed to dlmalloc first; `memory.grow` is asked only beyond it.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{AtomicBool, Ordering};

use dlmalloc::{Allocator, Dlmalloc};

unsafe extern "C" {
    /// Where the linker's heap starts: after the stack and the static data.
    static __heap_base: u8;
    /// Where the initial memory ends.
    static __heap_end: u8;
}

/// The wasm page size.
const PAGE: usize = 64 * 1024;

/// Regions for dlmalloc: the initial memory's heap once, then `memory.grow`.
struct InitialHeapFirst {
    /// Whether the initial heap was handed out.
    given: AtomicBool,
}

// SAFETY: the regions handed out are owned by dlmalloc alone: the initial heap once (nothing
// else in the component writes past `__heap_base`), then fresh pages from `memory.grow`.
// Nothing is ever returned to the system (`free`, `free_part` and `remap` refuse).
unsafe impl Allocator for InitialHeapFirst {
    fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
        let base = (&raw const __heap_base).addr();
        let end = (&raw const __heap_end).addr();
        // Handed out once, to the first request it can hold (a larger first request grows
        // the memory and leaves it for the next one).
        if end > base && end - base >= size && !self.given.swap(true, Ordering::Relaxed) {
            // Zeroed: the initial memory beyond the static data starts zeroed, and nothing
            // wrote there before dlmalloc's first request that fits.
            return (ptr::with_exposed_provenance_mut(base), end - base, 0);
        }
        let pages = size.div_ceil(PAGE);
        let previous = core::arch::wasm32::memory_grow(0, pages);
        if previous == usize::MAX {
            return (ptr::null_mut(), 0, 0);
        }
        (
            ptr::with_exposed_provenance_mut(previous * PAGE),
            pages * PAGE,
            0,
        )
    }

    fn remap(&self, _ptr: *mut u8, _old: usize, _new: usize, _can_move: bool) -> *mut u8 {
        ptr::null_mut()
    }

    fn free_part(&self, _ptr: *mut u8, _old: usize, _new: usize) -> bool {
        false
    }

    fn free(&self, _ptr: *mut u8, _size: usize) -> bool {
        false
    }

    fn can_release_part(&self, _flags: u32) -> bool {
        false
    }

    fn allocates_zeros(&self) -> bool {
        true
    }

    fn page_size(&self) -> usize {
        PAGE
    }
}

/// dlmalloc over [`InitialHeapFirst`], as the global allocator.
pub struct Heap(UnsafeCell<Dlmalloc<InitialHeapFirst>>);

// SAFETY: the component is single-threaded (wasm32 without the `atomics` feature): no two
// calls into the allocator can overlap.
unsafe impl Sync for Heap {}

impl Heap {
    /// An empty heap.
    pub const fn new() -> Self {
        Self(UnsafeCell::new(Dlmalloc::new_with_allocator(
            InitialHeapFirst {
                given: AtomicBool::new(false),
            },
        )))
    }
}

// SAFETY: each method forwards to dlmalloc with the caller's layout, as `GlobalDlmalloc`
// does; the single thread means the `UnsafeCell` is never borrowed twice at once.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { (*self.0.get()).malloc(layout.size(), layout.align()) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { (*self.0.get()).free(ptr, layout.size(), layout.align()) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe { (*self.0.get()).calloc(layout.size(), layout.align()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe { (*self.0.get()).realloc(ptr, layout.size(), layout.align(), new_size) }
    }
}
