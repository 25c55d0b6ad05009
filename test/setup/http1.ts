// vitest setup file: every test process talks HTTP/1.1 to the apiserver (see agent/kube/http1.ts).
import { useHttp1ForKubernetes } from '../../agent/kube/http1.ts';

useHttp1ForKubernetes();
