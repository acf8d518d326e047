"""What Sherman and CHIME share: a B+tree in remote memory read with one-sided RDMA, a
compute-side cache of leaf-parent nodes, and writes that lock the nodes they change.

Locating leaves (``_locate``), as both systems do it:

    for each distinct leaf-parent P of the leaves wanted:
        cache hit on P  -> the leaf's address is known locally
        miss            -> read every node on the path root .. P from remote memory
    missed paths are read level by level, one batch per level (nodes shared by several
    paths are read once); the leaf-parents read are added to the cache

So a get whose leaf-parent is cached costs only the leaf (or neighborhood) READ, and a
miss costs one READ per level (``height`` round trips in all). The root *pointer* is cached,
the root node is not. Sherman's own range query assumes every leaf-parent is cached (it
returns nothing otherwise, "FIXME" in Tree.cpp); here a miss is paid with a traversal.

Writes change the tree when they execute, not when they are planned. ``plan_insert`` /
``plan_delete`` return an op carrying a :class:`~kvsim.index.rdma.WriteJob`; ``execute``
runs it (``_run_write``):

    group the keys by the leaf that holds them *now*; locate the leaves (as above)
    per leaf, leaves in parallel (a request's new blocks, a batch of demotions):
        take the leaf's lock (kvsim.index.locks: Sherman waits locally and gets the lock
            handed over; CHIME CASes the remote word and retries when it fails)
        READ the leaf (Sherman: the 1 KB page; CHIME: the keys' neighborhoods)
        apply the keys to the tree now (splits happen now); keys another writer's split
            moved to a sibling meanwhile are written there afterwards (turn right)
        [a split: WRITE the new sibling first]  WRITE the entries (or the split page)
            with the unlock in one batch (no unlock when the lock is handed over)
    then each node that took a separator: lock, READ, [WRITE its new sibling], WRITE +
    unlock, level by level (the separators themselves are in the tree since the leaf's
    apply); a new root costs one more WRITE

Leaves whose lock is free go through their steps together, one batch per step; a leaf
whose lock is held is handled by its own small process that waits (or spins) and then
does its steps alone -- a writer never waits while holding another lock, so no deadlock.
Every round trip posted (retries included) counts in the op's ``round_trips`` and bytes;
``lock_wait_s`` is the longest extra time any of its locks took (a local wait until the
hand-over, or spinning: the successful CAS's completion minus the first CAS's), and
``cas_retries`` counts failed CASes.

Coherence of the compute-side cache: both papers cache only internal nodes (leaf-parents),
so updates and deletes of entries never change a cached node (neither tree merges on
delete) and cost nothing extra; a leaf split changes its leaf-parent, and other compute
nodes find out when they use their stale copy for a key the split moved (Sherman checks
the fence keys of the leaf it reads, CHIME the sibling pointer replicated in it:
validation, no invalidation messages), paying the wasted leaf READ and a traversal from
the root. One client is
simulated; with ``client.sharers`` = S other compute nodes writing the same tree at the
same rate, a split is another node's with probability S / (S + 1) (drawn from the run's
generator): then our cached copy of the leaf-parent is stale and our next use of it pays
that wasted READ plus the traversal (only for keys of the leaf the split created: the
copy is still right for the others).
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import simpy

from kvsim.index.base import Op
from kvsim.index.btree import BPlusTree, Node
from kvsim.index.locks import LockTable, Spinner
from kvsim.index.rdma import (
    ATOMIC,
    READ,
    WRITE,
    RdmaClient,
    RdmaIndex,
    Round,
    RoundBuilder,
    WriteJob,
)

LOCK_BYTES = 8  # a lock word (CAS) or an unlock WRITE
Split = tuple[Node, Node, "Node | None"]  # (left, new right, node the separator went into)


@dataclass(slots=True, eq=False)
class _Target:
    node: Node  # the node written (a leaf, or an internal node taking a separator)
    keys: list[int]
    slot: int
    since: float = 0.0  # when it asked for the lock
    epoch: int = -1  # the node's split count (Node.ver) when the keys were grouped


@dataclass(slots=True)
class _Applied:
    """What applying a leaf's keys did, for the cost of writing it back."""

    keys: int  # entries changed
    splits: int  # leaf splits
    hopped: int = 0  # entries moved by hopscotch (CHIME)
    moved: list[int] = field(default_factory=list)  # keys now in another leaf


class RemoteTreeIndex(RdmaIndex):
    internal_bytes: int
    leaf_bytes: int
    tree: BPlusTree

    def __init__(
        self,
        client: RdmaClient,
        *,
        cache_bytes: float,
        cache_policy: str,
        lookup: str,
        lock_wait: str,
        lock_slots: int,
        max_handover: int,
        cas_backoff_s: float,
        seed: int,
        rng: Any,
    ) -> None:
        super().__init__(client, cache_bytes=cache_bytes, cache_policy=cache_policy, lookup=lookup, seed=seed, rng=rng)
        self.locks = LockTable(lock_wait, lock_slots, max_handover, cas_backoff_s)
        self._stale: dict[int, set[int]] = {}  # cached leaf-parent -> leaves our copy misses
        self.stale_hits = 0
        self.splits = 0

    # --- helpers -------------------------------------------------------------------------
    def bulk_load(self, ids: Sequence[int]) -> None:
        """Start the index holding ``ids`` (a bottom-up build at the layout's fill)."""
        self.tree.bulk_load(sorted(set(self.keymap.keys(ids))))

    def contains(self, block: int) -> bool:
        return self.keymap.key(block) in self.tree.leaf_of

    def _leaves_of(self, keys: list[int], as_range: bool) -> list[Node]:
        """Distinct leaves holding ``keys`` (a key range under remapped order)."""
        tree = self.tree
        if as_range and not self.keymap.hashed and len(keys) > 1:
            return tree.range_leaves(min(keys), max(keys))
        seen: dict[int, Node] = {}
        for k in keys:
            leaf = tree.find_leaf(k)
            if leaf.id not in seen:
                seen[leaf.id] = leaf
        return list(seen.values())

    def _group(self, keys: list[int], delete: bool) -> dict[int, tuple[Node, list[int]]]:
        """The keys by the leaf that holds (or would hold) them now; a delete drops the
        absent ones. Written for speed: a present key is one dict probe (demotions update
        many present keys), an absent one a descent unless it falls in the fences of the
        leaf found last (a request's new blocks under remapped keys: one descent)."""
        find = self.tree.find_leaf_range
        leaf_of = self.tree.leaf_of
        out: dict[int, tuple[Node, list[int]]] = {}
        last: Node | None = None
        lo = hi = 0.0
        for k in keys:
            leaf = leaf_of.get(k)
            if leaf is None:
                if delete:
                    continue
                if last is not None and lo <= k < hi:
                    leaf = last
                else:
                    leaf, lo, hi = find(k)
                    last = leaf
            g = out.get(leaf.id)
            if g is None:
                out[leaf.id] = (leaf, [k])
            else:
                g[1].append(k)
        return out

    def _locate(self, b: RoundBuilder, leaves: list[Node]) -> int:
        """Add the traversal rounds needed to know ``leaves``' addresses; return the
        number of cache probes (for client CPU)."""
        if self.tree.height == 1:
            return 0
        cache = self.cache
        stale = self._stale
        missing: list[Node] = []
        probed: set[int] = set()
        for leaf in leaves:
            p = leaf.parent
            if p is None or p.id in probed:
                continue
            probed.add(p.id)
            gone = stale.get(p.id) if stale else None
            if gone is not None and leaf.id in gone:
                # our copy of p predates the split that made this leaf: we read the old
                # leaf, its fence keys show the copy is stale, and we restart from the root
                del stale[p.id]
                cache.discard(p.id)
                self.stale_hits += 1
                b.add(READ, 1, read_bytes=self.leaf_bytes)
                missing.append(p)
            elif not cache.lookup(p.id):
                missing.append(p)
        if missing:
            per_level: dict[int, set[int]] = {}
            for p in missing:
                n: Node | None = p
                while n is not None:
                    ids = per_level.setdefault(n.level, set())
                    if n.id in ids:
                        break
                    ids.add(n.id)
                    n = n.parent
            for level in sorted(per_level, reverse=True):
                m = len(per_level[level])
                b.add(READ, m, read_bytes=m * self.internal_bytes)
            for p in missing:
                cache.add(p.id, self.internal_bytes)
        return len(probed)

    # --- writes: planned now, applied when they execute --------------------------------
    def _plan_write(self, kind: str, ids: Sequence[int], delete: bool) -> list[Op]:
        if len(ids) == 0:
            return []
        keys = self.keymap.keys(ids)
        if delete and not any(k in self.tree.leaf_of for k in keys):
            return []
        return [Op(kind, len(ids), 0, 0, 0, 0.0, write=WriteJob(keys, delete))]

    def plan_insert(self, keys: Sequence[int]) -> list[Op]:
        return self._plan_write("insert", keys, delete=False)

    def plan_update(self, keys: Sequence[int]) -> list[Op]:
        return self._plan_write("insert", keys, delete=False)

    def plan_delete(self, keys: Sequence[int]) -> list[Op]:
        return self._plan_write("delete", keys, delete=True)

    def apply(self, ops: list[Op]) -> None:
        for op in ops:
            if op.write is not None:
                groups = list(self._group(op.write.keys, op.write.delete).values())
                for leaf, keys, ver in [(leaf, keys, leaf.ver) for leaf, keys in groups]:
                    self._apply_leaf(leaf, keys, op.write.delete, ver)

    def _on_split(self, left: Node, right: Node, into: Node | None) -> None:
        """Cache upkeep after a split: a cached leaf-parent that splits stays cached and so
        does its new sibling (this client wrote both); a leaf split is another compute
        node's with probability S / (S + 1), leaving our copy of its parent without the new
        leaf: a key of that leaf met through the copy finds it stale."""
        self.splits += 1
        cache = self.cache
        if left.level == 1 and left.id in cache:
            cache.add(right.id, self.internal_bytes)
        s = self.client.sharers
        if left.level == 0 and s and into is not None and into.id in cache and self.rng.random() < s / (s + 1.0):
            self._stale.setdefault(into.id, set()).add(right.id)

    def _on_delete(self, key: int) -> None:
        """Hook: a key left the tree (CHIME drops it from its hotspot buffer)."""

    def _apply_leaf(self, leaf: Node, keys: list[int], delete: bool, epoch: int = -1) -> tuple[_Applied, list[Split]]:
        """Apply ``keys`` to ``leaf`` now. Keys that no longer belong to it (another
        writer's split moved them) are returned in ``moved``; ``epoch``: the leaf's split
        count when the keys were grouped (no split since: no key moved)."""
        tree = self.tree
        leaf_of = tree.leaf_of
        layout = tree.layout
        moves0 = getattr(layout, "moves", 0)
        moved: list[int] = []
        if delete:
            mine = [k for k in keys if k in leaf_of]  # (deleted meanwhile: nothing to do)
            if epoch != leaf.ver:
                moved = [k for k in mine if leaf_of[k] is not leaf]
                mine = [k for k in mine if leaf_of[k] is leaf]
        elif epoch == leaf.ver:
            mine = keys
        else:  # the leaf split meanwhile: keys at or past its new upper fence moved right
            now_at, _, hi = tree.find_leaf_range(min(keys))  # (its lower fence never moves)
            if now_at is not leaf:
                hi = -math.inf
            mine = [k for k in keys if k < hi]
            moved = [k for k in keys if k >= hi]
        splits: list[Split] = []
        n = 0
        if delete:
            for k in mine:
                if tree.delete(k):
                    n += 1
                    self._on_delete(k)
        else:
            insert = tree.insert
            find = tree.find_leaf_range
            hint: Node | None = leaf
            lo, hi = -math.inf, math.inf  # ``mine`` is all in ``leaf`` until it splits
            for k in mine:
                if hint is None or not lo <= k < hi:
                    hint, lo, hi = find(k)
                insert(k, hint)  # False for a present key: its address changes in place
                n += 1
                if tree.split_log:
                    hint = None  # the leaf split: later keys may be in its new sibling
                    for (left, right), into in zip(tree.split_log, tree.split_into, strict=True):
                        splits.append((left, right, into))
                        self._on_split(left, right, into)
        leaf_splits = sum(1 for left, _, _ in splits if left.level == 0)
        return _Applied(n, leaf_splits, getattr(layout, "moves", 0) - moves0, moved), splits

    # --- the costs a tree model fills in ---------------------------------------------------
    def _read_cost(self, t: _Target, delete: bool) -> tuple[int, int]:
        """``(messages, bytes)`` to READ target ``t`` while holding its lock."""
        raise NotImplementedError

    def _leaf_write(self, a: _Applied, delete: bool) -> tuple[list[tuple[int, int, int]], int, int]:
        """After applying: rounds before the write-back (``(kind, messages, bytes)``:
        a split's sibling page) and the write-back's ``(messages, bytes)`` (unlock apart)."""
        raise NotImplementedError

    # --- the write protocol ----------------------------------------------------------------
    def _post(self, now: float, qp: int, op: Op, kind: int, messages: int, nbytes: int) -> float:
        """Post one batch at ``now`` and count it in ``op``; return its completion (the
        caller yields one timeout to it: written flat, not as a generator, for speed)."""
        client = self.client
        db = 1 if client.doorbell_batch else messages
        op.write.rounds.append((kind, messages, nbytes, db))
        op.round_trips += 1
        if kind == READ:
            op.bytes_received += nbytes
        else:
            op.bytes_sent += nbytes
            if kind == ATOMIC:
                op.atomics += messages
        return client.post(now, qp, kind, messages, nbytes, db)

    def _targets(self, groups: Sequence[tuple[Node, list[int]]]) -> list[_Target]:
        slot = self.locks.slot
        return [_Target(node, keys, slot(node.id), 0.0, node.ver) for node, keys in groups]

    def _run_write(self, env: simpy.Environment, op: Op, host: int = 0) -> Generator[simpy.Event, Any, None]:
        job: WriteJob = op.write
        delete = job.delete
        groups = list(self._group(job.keys, delete).values())
        if groups:
            qp = self.client.next_qp(host)
            b = RoundBuilder(self.client)
            # the cache probes' CPU delays the first post (it is joined to the traversal's
            # first round, or to the lock's: no event of its own)
            cpu = self._locate(b, [leaf for leaf, _ in groups]) * self.local_lookup_s
            op.client_s += cpu
            for kind, m, nb, _ in b.rounds:
                done = self._post(env.now + cpu, qp, op, kind, m, nb)
                cpu = 0.0
                yield env.timeout(done - env.now)
            splits = yield from self._locked(env, qp, op, self._targets(groups), delete, None, cpu)
            if splits:
                yield from self._parents(env, qp, op, splits)
        op.rounds = tuple(job.rounds)

    def _parents(self, env: simpy.Environment, qp: int, op: Op, splits: list[Split]) -> Generator[simpy.Event, Any, None]:
        """Each node that took a separator: lock, READ, [WRITE its sibling], WRITE + unlock,
        level by level; a new root: one WRITE."""
        by_level: dict[int, dict[int, Node]] = {}
        roots = 0
        for _, _, into in splits:
            if into is None:
                roots += 1
            else:
                by_level.setdefault(into.level, {})[into.id] = into
        for level in sorted(by_level):
            nodes = by_level[level]
            yield from self._locked(env, qp, op, self._targets([(n, []) for n in nodes.values()]), False, splits)
        if roots:
            done = self._post(env.now, qp, op, WRITE, roots, roots * self.internal_bytes)
            yield env.timeout(done - env.now)

    def _locked(
        self,
        env: simpy.Environment,
        qp: int,
        op: Op,
        targets: list[_Target],
        delete: bool,
        splits_so_far: list[Split] | None = None,
        cpu: float = 0.0,
    ) -> Generator[simpy.Event, Any, list[Split]]:
        """Lock ``targets`` and write them: the free ones together, each held one alone.
        ``cpu``: client time to spend before the first CAS is posted."""
        locks = self.locks
        splits: list[Split] = []
        waits: list[tuple[_Target, simpy.Event | None]] = []  # held by others: wait / spin
        now = env.now + cpu
        first_done = now
        if locks.local:
            free = []
            for t in targets:
                t.since = now
                ev = locks.enter(env, t.slot)
                if ev is None:
                    free.append(t)
                else:
                    waits.append((t, ev))
            mine = free
        else:
            n = len(targets)
            first_done = self._post(now, qp, op, ATOMIC, n, LOCK_BYTES * n)
            yield env.timeout(first_done - env.now)
            arrival = first_done - self.client.half_s
            mine = []
            for t in targets:
                if locks.try_cas(t.slot, arrival):
                    mine.append(t)
                else:
                    op.cas_retries += 1
                    waits.append((t, None))
        # Written for speed: a lone held lock is waited for in this process; several run in
        # processes of their own (in parallel, each holding only its own lock).
        inline = waits.pop() if waits and not mine and len(waits) == 1 else None
        subs = [env.process(self._contended(env, qp, op, t, ev, delete, first_done, splits_so_far)) for t, ev in waits]
        if mine:
            if locks.local:
                done = self._post(now, qp, op, ATOMIC, len(mine), LOCK_BYTES * len(mine))
                yield env.timeout(done - env.now)
            splits += yield from self._critical(env, qp, op, mine, delete, splits_so_far)
        if inline is not None:
            splits += yield from self._contended(env, qp, op, inline[0], inline[1], delete, first_done, splits_so_far)
        for p in subs:
            got = yield p
            splits += got
        return splits

    def _contended(self, env: simpy.Environment, qp: int, op: Op, t: _Target, ev: simpy.Event | None, delete: bool,
                   first_done: float, splits_so_far: list[Split] | None) -> Generator[simpy.Event, Any, list[Split]]:
        """A target whose lock someone else holds: wait for the hand-over (local) or spin
        on the remote word until a CAS wins; then its critical section alone."""
        locks = self.locks
        if ev is not None:
            handed = yield ev
            wait = env.now - t.since
            if not handed:
                done = self._post(env.now, qp, op, ATOMIC, 1, LOCK_BYTES)
                yield env.timeout(done - env.now)
        else:  # spin: each retry a CAS round trip after the backoff (kvsim.index.locks)
            half = self.client.half_s
            backoff = locks.backoff_s + self.client.nic_msg_s + LOCK_BYTES * self.client.byte_s  # + its NIC time
            draw = self.client.draw[ATOMIC]

            def period() -> float:  # one retry: its round trip after the backoff
                return backoff + draw()

            sp = Spinner(env, first_done + backoff + half, period)
            locks.spin(env, t.slot, sp, half)
            while True:
                yield sp.event
                if locks.try_cas(t.slot, sp.next):
                    break
                sp.fails += 1
                sp.next += period()
                sp.event = env.event()
                locks.spin(env, t.slot, sp, half)
            # the failed CASes: counted and timed, not booked on the NIC (locks docstring)
            op.cas_retries += sp.fails
            op.round_trips += sp.fails + 1
            op.atomics += sp.fails + 1
            op.bytes_sent += LOCK_BYTES * (sp.fails + 1)
            op.write.rounds.extend([(ATOMIC, 1, LOCK_BYTES, 1)] * (sp.fails + 1))
            wait = env.now - first_done
        if wait > op.lock_wait_s:
            op.lock_wait_s = wait
        out: list[Split] = yield from self._critical(env, qp, op, [t], delete, splits_so_far)
        return out

    def _critical(self, env: simpy.Environment, qp: int, op: Op, targets: list[_Target], delete: bool,
                  splits_so_far: list[Split] | None) -> Generator[simpy.Event, Any, list[Split]]:
        """Holding the locks of ``targets``: READ, apply, [sibling pages], WRITE + unlock."""
        m = nb = 0
        for t in targets:
            tm, tb = self._read_cost(t, delete) if t.node.level == 0 else (1, self.internal_bytes)
            m += tm
            nb += tb
        done = self._post(env.now, qp, op, READ, m, nb)
        yield env.timeout(done - env.now)
        splits: list[Split] = []
        moved: list[int] = []
        pre: dict[int, list[int]] = {}  # kind -> [messages, bytes]
        wm = wb = 0
        for t in targets:
            if t.node.level == 0:
                a, s = self._apply_leaf(t.node, t.keys, delete, t.epoch)
                splits += s
                moved += a.moved
                before, tm, tb = self._leaf_write(a, delete)
            else:  # an internal node took a separator (already in the tree)
                split = splits_so_far is not None and any(left is t.node for left, _, _ in splits_so_far)
                before = [(WRITE, 1, self.internal_bytes)] if split else []
                tm, tb = 1, self.internal_bytes
            for kind, bm, bb in before:
                acc = pre.setdefault(kind, [0, 0])
                acc[0] += bm
                acc[1] += bb
            wm += tm
            wb += tb
        for kind in (READ, WRITE):  # a split: the rest of the leaf, then the new sibling
            if kind in pre:
                done = self._post(env.now, qp, op, kind, pre[kind][0], pre[kind][1])
                yield env.timeout(done - env.now)
        # the write-back with the unlocks (none for a lock handed over); with spinning
        # locks the unlock takes effect when it lands, half a round trip before completion
        locks = self.locks
        local = locks.local
        handing = [local and locks.will_hand_over(t.slot) for t in targets]
        unlocks = handing.count(False)
        now = env.now
        done = self._post(now, qp, op, WRITE, wm + unlocks, wb + LOCK_BYTES * unlocks)
        if not local:
            half = self.client.half_s
            for t in targets:
                locks.unlock_at(env, t.slot, done - half, half)
        yield env.timeout(done - now)
        if local:
            for t, h in zip(targets, handing, strict=True):
                locks.leave(t.slot, h)
        else:
            for t in targets:
                locks.release_spin(t.slot)
        if moved:  # turn right: write the keys a concurrent split moved, under their leaves
            splits += yield from self._locked(env, qp, op, self._targets(list(self._group(moved, delete).values())), delete)
        return splits

    # --- reports ---------------------------------------------------------------------------
    def stats(self) -> dict[str, float]:
        t = self.tree
        lk = self.locks
        return {
            "keys": t.n_keys,
            "height": t.height,
            "leaves": t.n_leaves,
            "internal_nodes": t.n_internal,
            "keys_per_leaf": t.n_keys / t.n_leaves if t.n_leaves else 0.0,
            "cache_nodes": len(self.cache),
            "cache_hit_ratio": self.cache.hit_ratio,
            "splits": self.splits,
            "stale_cache_hits": self.stale_hits,
            "locks_taken": lk.acquired,
            "lock_handovers": lk.handed,
            "cas_failed": lk.cas_failed,
        }


__all__ = ["LOCK_BYTES", "RemoteTreeIndex", "Round"]
