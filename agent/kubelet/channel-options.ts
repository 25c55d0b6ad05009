/**
 * Options of the agent's gRPC channels to the kubelet's sockets (PodResources, Registration).
 * An idle channel lets its connection go after 15 s: while any channel holds one, grpc-js
 * sweeps its subchannel pool every 10 s, a third of an idle agent's wake-ups (issue 15).
 * Connecting again over a unix socket costs well under a millisecond; the ledger's 5 s
 * reconcile, while this node holds slots, keeps its connection.
 */
export const KUBELET_CHANNEL_OPTIONS = { 'grpc.client_idle_timeout_ms': 15_000 } as const;
