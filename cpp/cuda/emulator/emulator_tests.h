// The emulated build's test-only kernels (test_kernels.cu), each with a planted bug.
#pragma once

#include <string>
#include <vector>

namespace gradsmith {
namespace cuda {

// Runs the test kernel `name` on x (copied to the device) and returns its output (x's size): tree_sum and
// tree_sum_no_barrier (256 values, the sum in element 0), write_past_end, early_return, unwritten_shared;
// host_pointer (a kernel given a host pointer); misaligned_load (a float4 load 4 bytes off); staged_copy and
// staged_copy_missing_wait (x through a copy stream, with and without the event wait).
// Throws cuda::Error when the emulator catches the kernel's bug.
std::vector<float> run_emulator_test_kernel(const std::string& name, const std::vector<float>& x);

}  // namespace cuda
}  // namespace gradsmith
