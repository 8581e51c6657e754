// Builds the UI into dist/, which the meshtwin binary embeds.
import { defineConfig } from "vite";

export default defineConfig({
  build: { outDir: "dist", emptyOutDir: true, chunkSizeWarningLimit: 1024 },
  server: { proxy: { "/api": { target: "http://127.0.0.1:8080", ws: true } } },
});
