// The factory the client uses to read multipart bodies into directives.
export { createDirectiveReader as readDirectives } from './directive';
