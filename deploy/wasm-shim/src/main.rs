//! Tether's wasmtime shim for containerd (runtime type `io.containerd.wasmtime.v1`).
//!
//! runwasi's `containerd-shim-wasm` does everything containerd-facing: the shim API, the
//! container's namespaces and cgroups (youki's libcontainer), the OCI spec, and running
//! containers that are not WebAssembly (the pod's pause container) as ordinary processes. This
//! file is only the engine glue it asks for: given the container's spec (entrypoint, args, env),
//! run a WASI preview 1 module or a WASI preview 2 command component with wasmtime.
//!
//! The entrypoint is the image's `Entrypoint[0]`, a `.wasm` file in the container's root
//! filesystem (`/path/app.wasm`, optionally `#function` for a module's export other than
//! `_start`). The WASI context gets the container's args and env, its stdio (so `kubectl logs`
//! shows what it prints), the pod's network (TCP/UDP sockets, name lookup) and `/` preopened.
//!
//! WASI has no signals: SIGTERM (the kubelet stopping the pod), SIGQUIT or SIGINT ends the guest
//! at once with exit status 128 + signal, instead of the kubelet's SIGKILL a grace period later.

use anyhow::{Context, Result, bail};
use containerd_shim_wasm::sandbox::Sandbox;
use containerd_shim_wasm::sandbox::context::{Entrypoint, RuntimeContext, WasmBinaryType};
use containerd_shim_wasm::shim::{Cli, Shim, Version, version};
use wasmtime::component::{Component, ResourceTable};
use wasmtime::{Engine, Linker, Module, Store};
use wasmtime_wasi::p2::bindings::Command;
use wasmtime_wasi::preview1::{self, WasiP1Ctx};
use wasmtime_wasi::{DirPerms, FilePerms, I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

struct WasmtimeShim;

struct WasmtimeSandbox {
    engine: Engine,
}

impl Default for WasmtimeSandbox {
    fn default() -> Self {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.async_support(true);
        Self {
            engine: Engine::new(&config).expect("wasmtime engine configuration is valid"),
        }
    }
}

impl Shim for WasmtimeShim {
    fn name() -> &'static str {
        "wasmtime"
    }

    fn version() -> Version {
        version!()
    }

    type Sandbox = WasmtimeSandbox;
}

impl Sandbox for WasmtimeSandbox {
    async fn run_wasi(&self, ctx: &impl RuntimeContext) -> Result<i32> {
        let Entrypoint { source, func, .. } = ctx.entrypoint();
        let bytes = source.as_bytes()?;
        tokio::select! {
            status = self.execute(ctx, &bytes, &func) => exit_code(status),
            signal = wait_for_signal() => Ok(128 + signal?),
        }
    }
}

/// Component state: WASI preview 2 needs a resource table beside its context.
struct ComponentState {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasmtimeSandbox {
    async fn execute(&self, ctx: &impl RuntimeContext, bytes: &[u8], func: &str) -> Result<()> {
        match WasmBinaryType::from_bytes(bytes) {
            Some(WasmBinaryType::Module) => {
                log::info!("running WASI preview 1 module, function {func:?}");
                let module = Module::from_binary(&self.engine, bytes)?;
                let mut store = Store::new(&self.engine, wasi_builder(ctx)?.build_p1());
                let mut linker: Linker<WasiP1Ctx> = Linker::new(&self.engine);
                preview1::add_to_linker_async(&mut linker, |state| state)?;
                let instance = linker.instantiate_async(&mut store, &module).await?;
                let start = instance
                    .get_func(&mut store, func)
                    .with_context(|| format!("module exports no function {func:?}"))?;
                start.call_async(&mut store, &[], &mut []).await
            }
            Some(WasmBinaryType::Component) => {
                log::info!("running WASI preview 2 command component");
                let component = Component::from_binary(&self.engine, bytes)?;
                let state = ComponentState {
                    wasi: wasi_builder(ctx)?.build(),
                    table: ResourceTable::new(),
                };
                let mut store = Store::new(&self.engine, state);
                let mut linker = wasmtime::component::Linker::new(&self.engine);
                wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
                let command = Command::instantiate_async(&mut store, &component, &linker).await?;
                command
                    .wasi_cli_run()
                    .call_run(&mut store)
                    .await?
                    .map_err(|()| anyhow::anyhow!("the component's wasi:cli/run returned an error"))
            }
            None => bail!("the entrypoint is neither a WebAssembly module nor a component"),
        }
    }
}

/// The guest's exit status: 0 when it returned, its own code when it called `proc_exit`.
fn exit_code(status: Result<()>) -> Result<i32> {
    match status {
        Ok(()) => Ok(0),
        Err(error) => match error.downcast_ref::<I32Exit>() {
            Some(exit) => Ok(exit.0),
            None => Err(error),
        },
    }
}

/// The container's args, env and stdio; the pod's network; `/` of its rootfs preopened.
fn wasi_builder(ctx: &impl RuntimeContext) -> Result<WasiCtxBuilder> {
    let envs: Vec<(&str, &str)> = ctx
        .envs()
        .iter()
        .map(|pair| pair.split_once('=').unwrap_or((pair.as_str(), "")))
        .collect();
    let mut builder = WasiCtxBuilder::new();
    builder
        .args(ctx.args())
        .envs(&envs)
        .inherit_stdio()
        .inherit_network()
        .allow_tcp(true)
        .allow_udp(true)
        .allow_ip_name_lookup(true)
        .preopened_dir("/", "/", DirPerms::all(), FilePerms::all())?;
    Ok(builder)
}

async fn wait_for_signal() -> Result<i32> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut quit = signal(SignalKind::quit())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = quit.recv() => libc_signal::SIGQUIT,
        _ = term.recv() => libc_signal::SIGTERM,
        _ = int.recv() => libc_signal::SIGINT,
    })
}

/// Linux signal numbers (x86_64 and aarch64 agree), without a libc dependency for three constants.
mod libc_signal {
    pub const SIGINT: i32 = 2;
    pub const SIGQUIT: i32 = 3;
    pub const SIGTERM: i32 = 15;
}

fn main() {
    WasmtimeShim::run(None);
}
