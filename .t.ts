import { loadAndValidate, formatProblem } from './src/api/manifests.ts';
console.log(loadAndValidate(process.argv.slice(2)).problems.map(formatProblem).join('\n'));
