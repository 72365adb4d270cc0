// Vite 8 builds the dashboard: `vite build web/dashboard` (npm run build:dashboard) -> web/dashboard/dist,
// served by the coordinator at /dashboard/ (so every asset URL starts with that base).
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/dashboard/',
  logLevel: 'warn',
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true, target: 'es2022', chunkSizeWarningLimit: 200 },
});
