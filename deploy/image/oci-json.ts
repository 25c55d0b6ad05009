/**
 * The JSON documents of an OCI image (image-spec v1.1): config, manifest, index, and the
 * image layout's `index.json`. Pure builders — no I/O — so the shapes are unit-tested and a
 * given input always serializes to the same bytes (insertion-ordered keys, no whitespace).
 */

export const MEDIA_TYPE = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

/** `linux/amd64`, `linux/arm64` (variant v8, as registries and containerd normalize it). */
export interface Platform {
  os: 'linux';
  architecture: string;
  variant?: string;
}

/** An OCI content descriptor. */
export interface Descriptor {
  mediaType: string;
  /** `sha256:<hex>`. */
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

/** A layer as built: its blob (compressed) and the digest of its uncompressed tar. */
export interface LayerBlob extends Descriptor {
  /** `sha256:` of the uncompressed tar: what the config's `rootfs.diff_ids` lists. */
  diffId: string;
  uncompressedSize: number;
  /** Shown in the config's history (`created_by`). */
  createdBy: string;
}

/** What the image runs: the config's `config` object. */
export interface RunConfig {
  user?: string;
  env?: readonly string[];
  entrypoint?: readonly string[];
  cmd?: readonly string[];
  workingDir?: string;
  labels?: Record<string, string>;
}

/** Parses `linux/amd64` or `linux/arm64/v8`. Throws on anything else. */
export function parsePlatform(text: string): Platform {
  const [os, architecture, variant, ...rest] = text.split('/');
  if (os !== 'linux' || architecture === undefined || architecture === '' || rest.length > 0) {
    throw new Error(`invalid platform ${JSON.stringify(text)}: expected linux/<arch>[/<variant>]`);
  }
  if (variant !== undefined) return { os, architecture, variant };
  return architecture === 'arm64' ? { os, architecture, variant: 'v8' } : { os, architecture };
}

export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, ...(platform.variant === undefined ? [] : [platform.variant])].join('/');
}

/** The image config document. `created` is an RFC 3339 time (fixed, for reproducibility). */
export function imageConfig(options: { platform: Platform; created: string; layers: readonly LayerBlob[]; run: RunConfig }): object {
  const { platform, created, layers, run } = options;
  return {
    created,
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant === undefined ? {} : { variant: platform.variant }),
    config: {
      ...(run.user === undefined ? {} : { User: run.user }),
      ...(run.env === undefined ? {} : { Env: run.env }),
      ...(run.entrypoint === undefined ? {} : { Entrypoint: run.entrypoint }),
      ...(run.cmd === undefined ? {} : { Cmd: run.cmd }),
      ...(run.workingDir === undefined ? {} : { WorkingDir: run.workingDir }),
      ...(run.labels === undefined ? {} : { Labels: run.labels }),
    },
    rootfs: { type: 'layers', diff_ids: layers.map((layer) => layer.diffId) },
    history: layers.map((layer) => ({ created, created_by: layer.createdBy })),
  };
}

/** Strips build-only fields from a layer: what a manifest lists. */
export function layerDescriptor(layer: LayerBlob): Descriptor {
  return { mediaType: layer.mediaType, digest: layer.digest, size: layer.size };
}

export function imageManifest(options: { config: Descriptor; layers: readonly LayerBlob[]; annotations?: Record<string, string> }): object {
  return {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.manifest,
    config: options.config,
    layers: options.layers.map(layerDescriptor),
    ...(options.annotations === undefined ? {} : { annotations: options.annotations }),
  };
}

/** A multi-platform image index; `manifests` carry their `platform`. */
export function imageIndex(options: { manifests: readonly Descriptor[]; annotations?: Record<string, string> }): object {
  return {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.index,
    manifests: options.manifests,
    ...(options.annotations === undefined ? {} : { annotations: options.annotations }),
  };
}

/**
 * The layout's `index.json`: one entry, the image (a manifest or an index) under its name.
 * `io.containerd.image.name` is the full reference (`ctr images import` names the image by
 * it); `org.opencontainers.image.ref.name` is the tag, as the image-layout spec and
 * `skopeo copy oci-archive:<tar>:<tag>` read it.
 */
export function layoutIndex(image: Descriptor, reference: string): object {
  const tag = reference.slice(reference.lastIndexOf(':') + 1);
  return {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.index,
    manifests: [{ ...image, annotations: { 'io.containerd.image.name': reference, 'org.opencontainers.image.ref.name': tag } }],
  };
}

/** The layout's `oci-layout` file. */
export const OCI_LAYOUT = { imageLayoutVersion: '1.0.0' } as const;

/** Source facts that become the `org.opencontainers.image.*` annotations and labels. */
export interface ImageSource {
  title: string;
  description: string;
  version: string;
  source: string;
  licenses: string;
  revision: string;
  /** RFC 3339. */
  created: string;
}

/** The pre-defined OCI annotation keys, sorted, for the index, manifests and config labels. */
export function imageAnnotations(source: ImageSource): Record<string, string> {
  return {
    'org.opencontainers.image.created': source.created,
    'org.opencontainers.image.description': source.description,
    'org.opencontainers.image.licenses': source.licenses,
    'org.opencontainers.image.revision': source.revision,
    'org.opencontainers.image.source': source.source,
    'org.opencontainers.image.title': source.title,
    'org.opencontainers.image.version': source.version,
  };
}
