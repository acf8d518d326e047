/* Build probe: does libibverbs (headers and library) exist? Used by the Makefile only. */
#include <infiniband/verbs.h>
int main(void) {
    int n = 0;
    struct ibv_device **l = ibv_get_device_list(&n);
    if (l) ibv_free_device_list(l);
    return 0;
}
