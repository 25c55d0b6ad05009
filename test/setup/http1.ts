// vitest setup file: every test process talks HTTP/1.1 to the apiserver (see kube/http1.ts).
import { useHttp1ForKubernetes } from '../../kube/http1.ts';

useHttp1ForKubernetes();
