// The router stands on the HTTP engine: `import Mizu` brings both, as before the split.
@_exported import MizuHTTP
