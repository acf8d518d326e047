/* Build probe: does the CUDA runtime (cuda_runtime.h, libcudart) exist? Used by the Makefile only. */
#include <cuda_runtime.h>
int main(void) {
    int n = 0;
    return cudaGetDeviceCount(&n) == cudaSuccess ? 0 : 1;
}
